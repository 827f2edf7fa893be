# The Debian packages imbench builds and tests with (sourced; same names in
# bookworm and trixie): scripts/setup.sh installs them on this machine,
# scripts/libtorch2/build-and-test.sh in its trixie root.
build_packages=(
  build-essential cmake make ccache pkg-config git ca-certificates
  libtorch-dev
  libopenblas0-openmp
  libfmt-dev libboost-program-options-dev
  libhdf5-dev hdf5-tools
  libgtest-dev libgmock-dev libbenchmark-dev
  zlib1g-dev nlohmann-json3-dev libtomlplusplus-dev
  dataset-fashion-mnist
  python3 python3-h5py python3-numpy python3-pandas
)
