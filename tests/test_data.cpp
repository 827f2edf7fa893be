// Tests of the core and data libraries: SHA-256, name lookup, the IDX and
// CIFAR-10 readers, datasets and their registry, data paths, synthetic data,
// test sets of your own (.npy, .npz, HDF5), and (skipped when absent) the real MNIST, Fashion-MNIST and CIFAR-10 files.
#include <H5Cpp.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "core/errors.h"
#include "core/sha256.h"
#include "data/cifar.h"
#include "data/dataset.h"
#include "data/fetch.h"
#include "data/idx.h"
#include "data/synthetic.h"
#include "data/user_data.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using namespace imbench;
using namespace imbench::data;
using testing::HasSubstr;
using Bytes = std::vector<std::uint8_t>;
using Shape = std::vector<int64_t>;

using imbench::testing_support::error_of;
using imbench::testing_support::TempDir;

namespace {

// Saves environment variables and restores them on destruction.
struct EnvGuard {
  std::map<std::string, std::optional<std::string>> saved;
  EnvGuard(std::initializer_list<const char*> names) {
    for (const char* n : names) saved[n] = std::getenv(n) ? std::optional<std::string>(std::getenv(n)) : std::nullopt;
  }
  ~EnvGuard() {
    for (const auto& [n, v] : saved) v ? ::setenv(n.c_str(), v->c_str(), 1) : ::unsetenv(n.c_str());
  }
};

// Matches a string that contains every one of the parts.
template <typename... S>
testing::Matcher<std::string> HasAll(const S&... parts) {
  return testing::AllOf(HasSubstr(std::string(parts))...);
}

void write_bytes(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}
Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
void write_gzip(const std::string& path, const Bytes& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

// Deterministic pseudo-random bytes (incompressible enough for gzip tests).
Bytes noise_bytes(std::size_t n, std::uint32_t seed) {
  Bytes out(n);
  for (auto& b : out) b = static_cast<std::uint8_t>((seed = seed * 1664525u + 1013904223u) >> 24);
  return out;
}

// An IDX file built by hand (independent of write_idx): header + data.
Bytes idx_bytes(std::vector<std::uint32_t> dims, const Bytes& values, std::uint8_t type = 0x08) {
  Bytes out{0, 0, type, static_cast<std::uint8_t>(dims.size())};
  for (auto d : dims)
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(d >> s));
  out.insert(out.end(), values.begin(), values.end());
  return out;
}

// Pixel byte j of CIFAR record i: a pattern that tells records and positions apart.
std::uint8_t cifar_pixel(std::size_t i, std::size_t j) { return (i * 37 + j * 7 + j / 251) % 256; }
Bytes cifar_records(const Bytes& labels, std::size_t first_index = 0) {
  Bytes out;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    out.push_back(labels[i]);
    for (std::size_t j = 0; j < kCifarImageBytes; ++j) out.push_back(cifar_pixel(first_index + i, j));
  }
  return out;
}

// A cifar-10-batches-bin folder: train batches of 1, 2, 1, 1, 1 records (labels 0-5), 2 test records (9, 8).
void write_cifar_folder(const fs::path& dir) {
  fs::create_directories(dir);
  const std::vector<Bytes> train{{0}, {1, 2}, {3}, {4}, {5}};
  for (std::size_t i = 0, index = 0; i < 5; index += train[i].size(), ++i)
    write_bytes((dir / fmt::format("data_batch_{}.bin", i + 1)).string(), cifar_records(train[i], index));
  write_bytes((dir / "test_batch.bin").string(), cifar_records({9, 8}, 100));
}

std::vector<int64_t> labels_of(const Dataset& ds) {
  auto l = ds.labels.contiguous();
  return std::vector<int64_t>(l.data_ptr<int64_t>(), l.data_ptr<int64_t>() + l.numel());
}

// Ten 1x2x2 examples whose label is their index.
Dataset indexed_dataset() {
  Bytes images(40), labels(10);
  for (std::size_t i = 0; i < images.size(); ++i) images[i] = static_cast<std::uint8_t>(i * 6);
  for (std::size_t i = 0; i < 10; ++i) labels[i] = static_cast<std::uint8_t>(i);
  return dataset_from_bytes("toy", "train", {10, 1, 2, 2}, images, labels, 10, {});
}

// MNIST-style IDX files <prefix>-images-idx3-ubyte etc.: n 28x28 images, byte k = (k / 784 + k) % 256, label i % 10.
void write_mnist_files(const fs::path& dir, const std::string& prefix, std::uint32_t n, bool gz = false) {
  fs::create_directories(dir);
  Bytes images(n * 784), labels(n);
  for (std::size_t k = 0; k < images.size(); ++k) images[k] = static_cast<std::uint8_t>((k / 784 + k) % 256);
  for (std::uint32_t i = 0; i < n; ++i) labels[i] = static_cast<std::uint8_t>(i % 10);
  const std::string ext = gz ? ".gz" : "";
  auto put = [&](const std::string& name, const Bytes& b) {
    gz ? write_gzip((dir / (name + ext)).string(), b) : write_bytes((dir / (name + ext)).string(), b);
  };
  put(prefix + "-images-idx3-ubyte", idx_bytes({n, 28, 28}, images));
  put(prefix + "-labels-idx1-ubyte", idx_bytes({n}, labels));
}

}  // namespace

// ---------------------------------------------------------------- sha256

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // Lengths around the 55/56-byte padding split and the 64-byte block size.
  const std::map<std::size_t, std::string> as{
      {55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
      {56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
      {63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
      {64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
      {65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"},
      {119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"},
      {120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"}};
  for (const auto& [n, hex] : as) EXPECT_EQ(sha256_hex(std::string(n, 'a')), hex) << n << " bytes";
}

TEST(Sha256, IncrementalOddChunksEqualOneShot) {
  const Bytes data = noise_bytes(5000, 42);
  const std::string whole = sha256_hex(std::string(data.begin(), data.end()));
  for (std::size_t chunk : {1, 3, 7, 13, 55, 63, 64, 65, 127, 1000}) {
    Sha256 h;
    for (std::size_t at = 0; at < data.size(); at += chunk)
      h.update(data.data() + at, std::min(chunk, data.size() - at));
    EXPECT_EQ(h.hex_digest(), whole) << "chunk " << chunk;
  }
  Sha256 h;
  h.update(data.data(), 0);
  h.update("abc", 3);
  h.update(data.data(), 0);
  EXPECT_EQ(h.hex_digest(), sha256_hex("abc"));
}

TEST(Sha256, File) {
  TempDir tmp;
  const Bytes data = noise_bytes(3 * 1024 * 1024 + 17, 7);  // spans several 1 MiB read buffers
  write_bytes(tmp.file("blob"), data);
  EXPECT_EQ(sha256_file(tmp.file("blob")), sha256_hex(std::string(data.begin(), data.end())));
  write_bytes(tmp.file("empty"), {});
  EXPECT_EQ(sha256_file(tmp.file("empty")), sha256_hex(""));
  const std::string missing = tmp.file("missing.bin");
  EXPECT_THAT(error_of<Error>([&] { sha256_file(missing); }), HasSubstr(missing));
  EXPECT_THAT(error_of<Error>([&] { sha256_file(tmp.path.string()); }), HasSubstr(tmp.path.string()));
}

// A folder tree with a link to a file outside it: the tree goes, the link's
// target stays; a missing path is fine.
TEST(RemoveTree, RemovesNestedFoldersAndLinksButNotTheirTargets) {
  TempDir tmp;
  const auto root = tmp.path / "tree";
  std::filesystem::create_directories(root / "a" / "b");
  write_bytes((root / "a" / "b" / "f.bin").string(), noise_bytes(100, 1));
  write_bytes((root / "g.bin").string(), {});
  write_bytes(tmp.file("outside.bin"), noise_bytes(10, 2));
  std::filesystem::create_symlink(tmp.file("outside.bin"), root / "link");
  std::filesystem::create_directory_symlink(tmp.path, root / "a" / "dirlink");
  std::error_code ec;
  EXPECT_TRUE(remove_tree(root.string(), ec)) << ec.message();
  EXPECT_FALSE(std::filesystem::exists(root));
  EXPECT_TRUE(std::filesystem::exists(tmp.file("outside.bin")));
  EXPECT_TRUE(remove_tree(root.string(), ec));  // already gone
  EXPECT_NO_THROW(remove_tree(tmp.file("never-was")));
}

// ---------------------------------------------------------------- names

TEST(Names, EditDistance) {
  const std::vector<std::tuple<const char*, const char*, std::size_t>> cases{
      {"", "", 0},           {"abc", "", 3},           {"", "abc", 3},
      {"mnist", "mnist", 0}, {"kitten", "sitting", 3}, {"sitting", "kitten", 3},
      {"minst", "mnist", 2}, {"flaw", "lawn", 2}};
  for (const auto& [a, b, d] : cases) EXPECT_EQ(edit_distance(a, b), d) << a << " / " << b;
}

TEST(Names, ClosestNameAndUnknownNameErrors) {
  const std::vector<std::string> known{"mnist", "fashion-mnist", "cifar10", "synthetic"};
  EXPECT_EQ(closest_name("minst", known), "mnist");
  EXPECT_EQ(closest_name("cifar-10", known), "cifar10");
  EXPECT_EQ(closest_name("fashion", known), "fashion-mnist");  // a prefix is suggested even when far
  EXPECT_EQ(closest_name("synthetc", known), "synthetic");
  EXPECT_EQ(closest_name("imagenet", known), "");
  EXPECT_EQ(closest_name("", known), "");
  EXPECT_EQ(closest_name("mnist", {}), "");

  EXPECT_THAT(error_of<UsageError>([&] { throw_unknown_name("dataset", "minst", known); }),
              HasAll("unknown dataset 'minst'", "did you mean 'mnist'", "mnist, fashion-mnist, cifar10, synthetic"));
  const std::string far = error_of<UsageError>([&] { throw_unknown_name("dataset", "imagenet", known); });
  EXPECT_THAT(far, testing::Not(HasSubstr("did you mean")));
  EXPECT_THAT(far, HasSubstr("known: mnist, fashion-mnist, cifar10, synthetic"));
  static_assert(!std::is_base_of_v<Error, UsageError> && !std::is_base_of_v<UsageError, Error>,
                "the two error types map to different exit codes");
}

TEST(Names, ParseSplit) {
  EXPECT_EQ(parse_split("train"), Split::kTrain);
  EXPECT_EQ(parse_split("test"), Split::kTest);
  EXPECT_EQ(to_string(Split::kTrain), "train");
  EXPECT_EQ(to_string(Split::kTest), "test");
  EXPECT_THAT(error_of<UsageError>([] { parse_split("tset"); }), HasSubstr("did you mean 'test'"));
}

// ---------------------------------------------------------------- IDX

TEST(Idx, RoundTrip) {
  TempDir tmp;
  const IdxArray images{{3, 4, 5}, noise_bytes(60, 1)}, labels{{3}, {7, 0, 255}};
  write_idx(tmp.file("images"), images);
  write_idx(tmp.file("labels"), labels);
  // The writer produces the documented layout byte for byte.
  EXPECT_EQ(read_bytes(tmp.file("images")), idx_bytes({3, 4, 5}, images.values));
  EXPECT_EQ(read_bytes(tmp.file("labels")), idx_bytes({3}, labels.values));
  const IdxArray i2 = read_idx(tmp.file("images")), l2 = read_idx(tmp.file("labels"));
  EXPECT_EQ(i2.dims, images.dims);
  EXPECT_EQ(i2.values, images.values);
  EXPECT_EQ(l2.dims, labels.dims);
  EXPECT_EQ(l2.values, labels.values);
  // Big-endian dimensions above 255, and four dimensions.
  const Bytes values = noise_bytes(600, 3);
  const IdxArray a = parse_idx(idx_bytes({2, 300}, values), "mem");
  EXPECT_EQ(a.dims, (std::vector<std::int64_t>{2, 300}));
  EXPECT_EQ(a.values, values);
  EXPECT_EQ(parse_idx(idx_bytes({1, 2, 3, 4}, Bytes(24)), "mem").dims, (std::vector<std::int64_t>{1, 2, 3, 4}));
  // The writer checks its input.
  EXPECT_THAT(error_of<Error>([&] { write_idx(tmp.file("x"), {{2, 2}, {1, 2, 3}}); }), HasSubstr(tmp.file("x")));
  EXPECT_THROW(write_idx(tmp.file("y"), IdxArray{{1, 1, 1, 1, 1}, {1}}), Error);
  EXPECT_THROW(write_idx((tmp.path / "no-such-dir" / "f").string(), IdxArray{{1}, {1}}), Error);
}

TEST(Idx, GzipIsReadTransparently) {
  TempDir tmp;
  const Bytes plain = idx_bytes({10, 28, 28}, noise_bytes(10 * 28 * 28, 5));
  write_gzip(tmp.file("images.gz"), plain);
  write_gzip(tmp.file("images-no-suffix"), plain);  // detected by the gzip magic
  ASSERT_NE(read_bytes(tmp.file("images.gz")), plain);
  EXPECT_EQ(read_file_bytes(tmp.file("images.gz")), plain);
  for (const auto* name : {"images.gz", "images-no-suffix"}) {
    const IdxArray a = read_idx(tmp.file(name));
    EXPECT_EQ(a.dims, (std::vector<std::int64_t>{10, 28, 28})) << name;
    EXPECT_EQ(a.values, Bytes(plain.begin() + 16, plain.end())) << name;
  }
}

TEST(Idx, CorruptFilesAreRejectedNamingFileAndProblem) {
  TempDir tmp;
  Bytes extra = idx_bytes({2, 2}, {1, 2, 3, 4});
  extra.push_back(9);
  const std::vector<std::tuple<const char*, Bytes, const char*>> cases{
      {"empty", {}, "truncated IDX file"},
      {"three-bytes", {0, 0, 8}, "truncated IDX file"},
      {"bad-magic-0", {1, 0, 8, 1, 0, 0, 0, 1, 5}, "bad IDX magic"},
      {"bad-magic-1", {0, 7, 8, 1, 0, 0, 0, 1, 5}, "bad IDX magic"},
      {"float-type", idx_bytes({1}, {0, 0, 0, 0}, 0x0D), "unsupported IDX data type 0x0d"},
      {"int-type", idx_bytes({1}, {0, 0, 0, 0}, 0x0C), "unsupported IDX data type 0x0c"},
      {"zero-dims", {0, 0, 8, 0, 1, 2, 3}, "declares 0 dimensions"},
      {"five-dims", idx_bytes({1, 1, 1, 1, 1}, {0}), "declares 5 dimensions"},
      {"truncated-header", {0, 0, 8, 3, 0, 0, 0, 2, 0, 0}, "truncated IDX header"},
      {"truncated-data", idx_bytes({2, 2, 2}, {1, 2, 3, 4, 5, 6, 7}), "truncated"},
      {"header-only", idx_bytes({3}, {}), "truncated"},
      {"trailing-bytes", extra, "oversized"},
      {"zero-dimension", idx_bytes({2, 0, 3}, {}), "dimension 1 is zero"},
      {"implausible", idx_bytes({1u << 16, 1u << 16, 1u << 16}, {}), "implausibly large"},
  };
  for (const auto& [name, bytes, problem] : cases) {
    const std::string path = tmp.file(name);
    write_bytes(path, bytes);
    const std::string msg = error_of<Error>([&] { read_idx(path); });
    EXPECT_THAT(msg, HasSubstr(path)) << name;
    EXPECT_THAT(msg, HasSubstr(problem)) << name;
  }
  // A truncated file's message gives what the header promised.
  EXPECT_THAT(error_of<Error>([&] { parse_idx(idx_bytes({2, 2, 2}, {1, 2, 3}), "t"); }), HasSubstr("2x2x2"));
}

// BUG (data/idx.cpp, parse_idx): the element count is multiplied before the
// 2^40 check, so dims 2^20 x 2^20 x 2^24 wrap the 64-bit count to 0 and a
// 16-byte header-only file is accepted with 0 values. Enable once fixed.
TEST(Idx, OverflowingDimensionsAreRejected) {
  const Bytes header_only = idx_bytes({1u << 20, 1u << 20, 1u << 24}, {});
  EXPECT_THAT(error_of<Error>([&] { parse_idx(header_only, "ovf"); }), HasSubstr("ovf"));
}

TEST(Idx, TruncatedAndCorruptGzip) {
  TempDir tmp;
  write_gzip(tmp.file("full.gz"), idx_bytes({100, 10, 10}, noise_bytes(10000, 9)));
  const Bytes gz = read_bytes(tmp.file("full.gz"));
  ASSERT_GT(gz.size(), 1000u);
  const std::string half = tmp.file("half.gz");
  write_bytes(half, Bytes(gz.begin(), gz.begin() + static_cast<std::ptrdiff_t>(gz.size() / 2)));
  EXPECT_THAT(error_of<Error>([&] { read_idx(half); }), HasAll(half, "truncated"));
  EXPECT_THAT(error_of<Error>([&] { read_file_bytes(half); }), HasAll(half, "gzip"));  // caught by the gzip layer
  // A wrong CRC in the gzip trailer is corrupt data, not a silently accepted file.
  Bytes bad_crc = gz;
  bad_crc[bad_crc.size() - 8] ^= 0xFF;
  const std::string crc = tmp.file("crc.gz");
  write_bytes(crc, bad_crc);
  EXPECT_THAT(error_of<Error>([&] { read_idx(crc); }), HasAll(crc, "gzip"));
}

TEST(Idx, MissingFileAndDirectory) {
  TempDir tmp;
  const std::string missing = tmp.file("nope-idx3-ubyte");
  EXPECT_THAT(error_of<Error>([&] { read_idx(missing); }), HasAll(missing, "not found"));
  EXPECT_THAT(error_of<Error>([&] { read_idx(tmp.path.string()); }), HasAll(tmp.path.string(), "directory"));
}

// ---------------------------------------------------------------- CIFAR-10

TEST(Cifar, ParsesWholeRecordsInOrder) {
  TempDir tmp;
  const Bytes labels{3, 0, 9}, bytes = cifar_records(labels);
  write_bytes(tmp.file("batch.bin"), bytes);
  for (const CifarBatch& b : {parse_cifar_batch(bytes, "mem"), read_cifar_batch(tmp.file("batch.bin"))}) {
    ASSERT_EQ(b.size(), 3u);
    EXPECT_EQ(b.labels, labels);
    ASSERT_EQ(b.images.size(), 3 * kCifarImageBytes);
    for (std::size_t i = 0; i < 3; ++i)
      for (std::size_t j = 0; j < kCifarImageBytes; j += 97)
        ASSERT_EQ(b.images[i * kCifarImageBytes + j], cifar_pixel(i, j)) << i << "," << j;
  }
  // As a dataset, byte j of record i lands at [i, j / 1024, (j % 1024) / 32, j % 32].
  const CifarBatch b = parse_cifar_batch(bytes, "mem");
  const Dataset ds = dataset_from_bytes("cifar10", "test", {3, 3, 32, 32}, b.images, b.labels, 10, {});
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t h : {0, 5, 31})
        for (int64_t w : {0, 17, 31})
          EXPECT_FLOAT_EQ(ds.images[i][c][h][w].item<float>(), cifar_pixel(i, c * 1024 + h * 32 + w) / 255.0f);
}

TEST(Cifar, RejectsBadFiles) {
  TempDir tmp;
  Bytes bytes = cifar_records({1, 2});
  bytes.pop_back();
  const std::string partial = tmp.file("partial.bin"), bad_label = tmp.file("label.bin"), empty = tmp.file("e.bin");
  write_bytes(partial, bytes);
  EXPECT_THAT(error_of<Error>([&] { read_cifar_batch(partial); }), HasAll(partial, "3073"));
  EXPECT_THAT(error_of<Error>([] { parse_cifar_batch(Bytes(3072), "short"); }), HasSubstr("3073"));

  write_bytes(bad_label, cifar_records({1, 10, 2}));
  EXPECT_THAT(error_of<Error>([&] { read_cifar_batch(bad_label); }), HasAll(bad_label, "record 1 has label 10"));
  EXPECT_THAT(error_of<Error>([] { parse_cifar_batch(cifar_records({255}), "m"); }), HasSubstr("label 255"));

  write_bytes(empty, {});
  EXPECT_THAT(error_of<Error>([&] { read_cifar_batch(empty); }), HasAll(empty, "empty"));
  EXPECT_THAT(error_of<Error>([&] { read_cifar_batch(tmp.file("missing.bin")); }), HasSubstr("missing.bin"));
}

TEST(Cifar, LoadsThroughRegistryConcatenatingBatches) {
  EnvGuard env{"IMBENCH_CIFAR10_DIR"};
  ::unsetenv("IMBENCH_CIFAR10_DIR");
  TempDir tmp;
  write_cifar_folder(tmp.path / "cifar-10-batches-bin");
  const Dataset train = load_dataset("cifar10", Split::kTrain, {"", tmp.file("cifar-10-batches-bin")});
  EXPECT_EQ(train.images.sizes().vec(), (Shape{6, 3, 32, 32}));
  EXPECT_EQ(train.images.dtype(), torch::kFloat32);
  EXPECT_EQ(labels_of(train), (Shape{0, 1, 2, 3, 4, 5}));
  EXPECT_FLOAT_EQ(train.images[2][1][3][4].item<float>(), cifar_pixel(2, 1024 + 3 * 32 + 4) / 255.0f);
  EXPECT_EQ(train.class_names.at(3), "cat");
  // Through the data directory, with no explicit folder.
  const Dataset test = load_dataset("cifar10", Split::kTest, {tmp.path.string(), ""});
  EXPECT_EQ(labels_of(test), (Shape{9, 8}));
  EXPECT_FLOAT_EQ(test.images[1][0][0][1].item<float>(), cifar_pixel(101, 1) / 255.0f);

  fs::remove(tmp.path / "cifar-10-batches-bin" / "data_batch_3.bin");
  EXPECT_THAT(error_of<Error>([&] {
                load_dataset("cifar10", Split::kTrain, {tmp.path.string(), ""});
              }),
              HasSubstr("data_batch_3.bin"));
  EXPECT_THAT(error_of<Error>([&] {
                load_dataset("cifar10", Split::kTest, {"", tmp.file("nowhere")});
              }),
              HasAll(tmp.file("nowhere"), "--cifar10-dir"));
}

TEST(Cifar, LinkCifar10) {
  EnvGuard env{"IMBENCH_CIFAR10_DIR"};
  ::unsetenv("IMBENCH_CIFAR10_DIR");
  TempDir tmp;
  write_cifar_folder(tmp.path / "source");
  std::ostringstream log;
  const std::string link = link_cifar10(tmp.file("data"), tmp.file("source"), log);
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(fs::path(link), tmp.path / "data" / "cifar-10-batches-bin");
  EXPECT_THAT(log.str(), HasSubstr("6 training and 2 test images"));
  EXPECT_EQ(load_dataset("cifar10", Split::kTrain, {tmp.file("data"), ""}).size(), 6);
  EXPECT_NO_THROW(link_cifar10(tmp.file("data"), tmp.file("source"), log));  // re-linking replaces the link

  fs::remove(tmp.path / "source" / "test_batch.bin");  // an invalid source leaves no link behind
  EXPECT_THAT(error_of<Error>([&] { link_cifar10(tmp.file("d2"), tmp.file("source"), log); }),
              HasSubstr("test_batch.bin"));
  EXPECT_FALSE(fs::exists(tmp.path / "d2" / "cifar-10-batches-bin"));
  write_cifar_folder(tmp.path / "source");
  fs::create_directories(tmp.path / "d3" / "cifar-10-batches-bin");
  EXPECT_THAT(error_of<Error>([&] { link_cifar10(tmp.file("d3"), tmp.file("source"), log); }), HasSubstr("not a link"));
}

// ---------------------------------------------------------------- IDX pairs and datasets

TEST(IdxPair, LoadsImagesAsFloatInUnitRange) {
  TempDir tmp;
  write_bytes(tmp.file("img"), idx_bytes({3, 2, 2}, {0, 255, 51, 102, 255, 0, 0, 0, 1, 2, 3, 4}));
  write_bytes(tmp.file("lab"), idx_bytes({3}, {0, 9, 3}));
  const Dataset ds = load_idx_pair("toy", "train", tmp.file("img"), tmp.file("lab"), 10, {"a"});
  EXPECT_EQ(ds.name + "/" + ds.split + "/" + std::to_string(ds.num_classes), "toy/train/10");
  EXPECT_EQ(ds.images.sizes().vec(), (Shape{3, 1, 2, 2}));
  EXPECT_EQ(ds.example_shape(), (Shape{1, 2, 2}));
  EXPECT_EQ(ds.images.dtype(), torch::kFloat32);
  EXPECT_EQ(ds.labels.dtype(), torch::kInt64);
  EXPECT_EQ(ds.images[0][0][0][0].item<float>(), 0.0f);  // exactly 0 and 1 at the ends
  EXPECT_EQ(ds.images[0][0][0][1].item<float>(), 1.0f);
  const auto expected = torch::tensor({0, 255, 51, 102, 255, 0, 0, 0, 1, 2, 3, 4}, torch::kFloat32) / 255;
  EXPECT_TRUE(torch::allclose(ds.images.flatten(), expected)) << ds.images;
  EXPECT_EQ(labels_of(ds), (Shape{0, 9, 3}));
}

TEST(IdxPair, RejectsInconsistentFiles) {
  TempDir tmp;
  write_bytes(tmp.file("img"), idx_bytes({3, 2, 2}, Bytes(12, 1)));
  write_bytes(tmp.file("img2d"), idx_bytes({3, 4}, Bytes(12, 1)));
  write_bytes(tmp.file("lab2"), idx_bytes({2}, {0, 1}));
  write_bytes(tmp.file("lab3"), idx_bytes({3}, {0, 1, 2}));
  write_bytes(tmp.file("lab10"), idx_bytes({3}, {0, 10, 1}));
  write_bytes(tmp.file("lab2d"), idx_bytes({3, 1}, {0, 1, 2}));
  auto load = [&](const char* images, const char* labels, int64_t classes) {
    return error_of<Error>([&] { load_idx_pair("t", "train", tmp.file(images), tmp.file(labels), classes, {}); });
  };
  EXPECT_THAT(load("img", "lab2", 10), HasAll(tmp.file("lab2"), "2 labels", "3 images"));
  EXPECT_THAT(load("img", "lab10", 10), HasAll(tmp.file("lab10"), "label 10 of example 1"));
  EXPECT_THAT(load("img", "lab3", 2), HasSubstr("label 2 of example 2"));  // the bound is the given class count
  EXPECT_THAT(load("img", "lab2d", 10), HasSubstr("expected 1 IDX dimension"));
  EXPECT_THAT(load("img2d", "lab3", 10), HasSubstr("expected 3 IDX dimensions"));
}

TEST(Dataset, FirstAndSlice) {
  const Dataset ds = indexed_dataset();
  const Dataset three = ds.first(3);
  EXPECT_EQ(labels_of(three), (Shape{0, 1, 2}));
  EXPECT_THAT(three.split, HasSubstr("first 3"));
  EXPECT_TRUE(torch::equal(three.images, ds.images.slice(0, 0, 3)));
  for (int64_t n : {0, -1, 10, 100}) EXPECT_EQ(labels_of(ds.first(n)), labels_of(ds)) << n;

  const Dataset mid = ds.slice(2, 5, "mid");
  EXPECT_EQ(labels_of(mid), (Shape{2, 3, 4}));
  EXPECT_EQ(mid.split, "mid");
  EXPECT_EQ(mid.name, "toy");
  EXPECT_TRUE(mid.images.is_alias_of(ds.images));  // a view, no copy
  EXPECT_TRUE(torch::equal(mid.images, ds.images.slice(0, 2, 5)));
  EXPECT_EQ(ds.slice(10, 10, "empty").size(), 0);
  EXPECT_EQ(ds.slice(0, 10, "all").size(), 10);
  for (auto [b, e] : std::vector<std::pair<int64_t, int64_t>>{{-1, 2}, {0, 11}, {5, 4}, {11, 11}})
    EXPECT_THAT(error_of<UsageError>([&, b = b, e = e] { ds.slice(b, e, "x"); }), HasSubstr("out of range")) << b;
}

TEST(Dataset, SplitValidationTakesTheLastExamples) {
  const Dataset ds = indexed_dataset();
  const TrainValidation tv = split_validation(ds, 3);
  EXPECT_EQ(labels_of(tv.train), (Shape{0, 1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(labels_of(tv.validation), (Shape{7, 8, 9}));
  EXPECT_TRUE(torch::equal(tv.validation.images, ds.images.slice(0, 7, 10)));
  EXPECT_THAT(tv.validation.split, HasSubstr("validation"));
  const TrainValidation none = split_validation(ds, 0);
  EXPECT_EQ(none.train.size(), 10);
  EXPECT_EQ(none.validation.size(), 0);
  for (int64_t n : {10, 11, -1}) EXPECT_THROW(split_validation(ds, n), UsageError) << n;
}

TEST(Dataset, Registry) {
  const auto names = dataset_names();
  for (const char* n : {"mnist", "fashion-mnist", "cifar10", "synthetic"})
    EXPECT_THAT(names, testing::Contains(std::string(n)));
  EXPECT_EQ(names.size(), dataset_registry().size());
  EXPECT_EQ(find_dataset("cifar10").example_shape, (Shape{3, 32, 32}));
  EXPECT_EQ(find_dataset("mnist").example_shape, (Shape{1, 28, 28}));
  for (const auto& d : dataset_registry()) EXPECT_EQ(d.num_classes, 10) << d.name;
  EXPECT_THAT(error_of<UsageError>([] { find_dataset("minst"); }), HasAll("did you mean 'mnist'", "cifar10"));
  EXPECT_THROW(load_dataset("imagenet", Split::kTrain), UsageError);
}

// ---------------------------------------------------------------- paths

TEST(Paths, ResolveDataDirPrecedence) {
  EnvGuard env{"IMBENCH_DATA_DIR", "XDG_CACHE_HOME", "HOME"};
  ::setenv("IMBENCH_DATA_DIR", "/env/data", 1);
  ::setenv("XDG_CACHE_HOME", "/xdg", 1);
  ::setenv("HOME", "/home/u", 1);
  EXPECT_EQ(resolve_data_dir("/opt/option"), "/opt/option");
  EXPECT_EQ(resolve_data_dir(""), "/env/data");
  ::setenv("IMBENCH_DATA_DIR", "", 1);  // empty counts as unset
  EXPECT_EQ(resolve_data_dir(""), "/xdg/imbench");
  ::unsetenv("IMBENCH_DATA_DIR");
  EXPECT_EQ(resolve_data_dir(""), "/xdg/imbench");
  ::unsetenv("XDG_CACHE_HOME");
  EXPECT_EQ(resolve_data_dir(""), "/home/u/.cache/imbench");
  EXPECT_EQ(resolve_data_dir("rel"), "rel");
  ::unsetenv("HOME");
  EXPECT_FALSE(resolve_data_dir("").empty());
}

TEST(Paths, ResolveCifar10DirPrecedence) {
  EnvGuard env{"IMBENCH_DATA_DIR", "IMBENCH_CIFAR10_DIR"};
  ::setenv("IMBENCH_CIFAR10_DIR", "/env/cifar", 1);
  ::setenv("IMBENCH_DATA_DIR", "/env/data", 1);
  EXPECT_EQ(resolve_cifar10_dir({"/d", "/opt/cifar"}), "/opt/cifar");
  EXPECT_EQ(resolve_cifar10_dir({"/d", ""}), "/env/cifar");
  ::unsetenv("IMBENCH_CIFAR10_DIR");
  EXPECT_EQ(resolve_cifar10_dir({"/d", ""}), "/d/cifar-10-batches-bin");
  EXPECT_EQ(resolve_cifar10_dir({}), "/env/data/cifar-10-batches-bin");
}

// ---------------------------------------------------------------- MNIST-family loading

TEST(Mnist, LoadsFromDataDir) {
  TempDir tmp;
  write_mnist_files(tmp.path / "mnist", "train", 4);
  write_mnist_files(tmp.path / "mnist", "t10k", 2);
  const Dataset train = load_dataset("mnist", Split::kTrain, {tmp.path.string(), ""});
  const Dataset test = load_dataset("mnist", Split::kTest, {tmp.path.string(), ""});
  EXPECT_EQ(train.images.sizes().vec(), (Shape{4, 1, 28, 28}));
  EXPECT_EQ(test.images.sizes().vec(), (Shape{2, 1, 28, 28}));
  EXPECT_EQ(train.name, "mnist");
  EXPECT_EQ(train.split, "train");
  EXPECT_EQ(test.split, "test");
  EXPECT_EQ(labels_of(train), (Shape{0, 1, 2, 3}));
  EXPECT_FLOAT_EQ(train.images[1][0][0][2].item<float>(), 19 / 255.0f);  // (1 + 784 + 2) % 256
  EXPECT_EQ(train.class_names.size(), 10u);
}

TEST(Mnist, LoadsGzippedFilesAndFashionFromDataDir) {
  TempDir tmp;
  write_mnist_files(tmp.path / "mnist", "t10k", 3, /*gz=*/true);
  EXPECT_EQ(load_dataset("mnist", Split::kTest, {tmp.path.string(), ""}).size(), 3);
  write_mnist_files(tmp.path / "fashion-mnist", "t10k", 5);
  const Dataset f = load_dataset("fashion-mnist", Split::kTest, {tmp.path.string(), ""});
  EXPECT_EQ(f.size(), 5);  // the data dir takes precedence over /usr/share/datasets
  EXPECT_EQ(f.name, "fashion-mnist");
  EXPECT_EQ(f.class_names.at(9), "Ankle boot");
}

TEST(Mnist, MissingOrCorruptData) {
  TempDir tmp;
  auto load = [&] { return error_of<Error>([&] { load_dataset("mnist", Split::kTrain, {tmp.path.string(), ""}); }); };
  EXPECT_THAT(load(), HasAll("imbench data fetch", (tmp.path / "mnist").string()));
  write_mnist_files(tmp.path / "mnist", "train", 2);  // images without labels are missing data too
  fs::remove(tmp.path / "mnist" / "train-labels-idx1-ubyte");
  EXPECT_THAT(load(), HasSubstr("imbench data fetch"));
  write_bytes((tmp.path / "mnist" / "train-labels-idx1-ubyte").string(), {0, 0, 8, 1, 0, 0, 0, 3, 1});
  EXPECT_THAT(load(), HasSubstr("train-labels-idx1-ubyte: truncated"));
  // verify_mnist names every file that is missing or differs from the recorded checksum.
  EXPECT_EQ(verify_mnist(tmp.file("nowhere")).size(), 4u);
  const auto bad = verify_mnist(tmp.file("mnist"));
  EXPECT_EQ(bad.size(), 4u);
  EXPECT_THAT(bad, testing::Contains(std::string("train-images-idx3-ubyte")));
}

// ---------------------------------------------------------------- synthetic

TEST(Synthetic, DeterministicAndWellFormed) {
  SyntheticOptions o;
  o.size = 50;
  o.num_classes = 4;
  o.example_shape = {2, 3, 3};
  o.seed = 11;
  const Dataset a = make_synthetic(o), b = make_synthetic(o);
  EXPECT_TRUE(torch::equal(a.images, b.images));
  EXPECT_TRUE(torch::equal(a.labels, b.labels));
  EXPECT_EQ(a.images.sizes().vec(), (Shape{50, 2, 3, 3}));
  EXPECT_EQ(a.labels.dtype(), torch::kInt64);
  EXPECT_EQ(a.num_classes, 4);
  const auto labels = labels_of(a);
  for (int64_t i = 0; i < 50; ++i) ASSERT_EQ(labels[i], i % 4) << i;
  EXPECT_GE(a.images.min().item<float>(), 0.0f);
  EXPECT_LE(a.images.max().item<float>(), 1.0f);
  SyntheticOptions other = o;
  other.seed = 12;
  EXPECT_FALSE(torch::equal(make_synthetic(other).images, a.images));
  const Dataset test = make_synthetic(o, "test");
  EXPECT_EQ(test.split, "test");
  EXPECT_FALSE(torch::equal(test.images, a.images));
}

TEST(Synthetic, ClassesAreSeparable) {
  SyntheticOptions o;
  o.size = 400;
  o.seed = 5;
  const Dataset train = make_synthetic(o, "train"), test = make_synthetic(o, "test");
  // Nearest class mean, computed on train, classifies the test split.
  auto x = train.images.reshape({o.size, -1});
  auto means = torch::zeros({o.num_classes, x.size(1)});
  for (int64_t c = 0; c < o.num_classes; ++c) means[c] = x.index({train.labels == c}).mean(0);
  auto pred = torch::cdist(test.images.reshape({o.size, -1}), means).argmin(1);
  EXPECT_GT(pred.eq(test.labels).to(torch::kFloat).mean().item<float>(), 0.99f);
}

TEST(Synthetic, RejectsBadOptionsAndLoadsThroughRegistry) {
  using Tweak = std::function<void(SyntheticOptions&)>;
  for (const Tweak& bad : {Tweak([](auto& o) { o.size = 0; }), Tweak([](auto& o) { o.num_classes = 1; }),
                           Tweak([](auto& o) { o.example_shape.clear(); }), Tweak([](auto& o) { o.noise = -0.5; })}) {
    SyntheticOptions o;
    bad(o);
    EXPECT_THROW(make_synthetic(o), UsageError);
  }
  EXPECT_EQ(load_dataset("synthetic", Split::kTrain).size(), 3000);
  const Dataset test = load_dataset("synthetic", Split::kTest);
  EXPECT_EQ(test.size(), 1000);
  EXPECT_EQ(test.example_shape(), find_dataset("synthetic").example_shape);
}

// ---------------------------------------------------------------- real data (skipped when absent)

TEST(RealData, Mnist) {
  const fs::path dir = fs::path(resolve_data_dir("")) / "mnist";
  if (!fs::exists(dir / "train-images-idx3-ubyte"))
    GTEST_SKIP() << "MNIST not found in " << dir.string() << " (run 'imbench data fetch --dataset mnist')";
  EXPECT_TRUE(verify_mnist(dir.string()).empty());
  const Dataset train = load_dataset("mnist", Split::kTrain), test = load_dataset("mnist", Split::kTest);
  EXPECT_EQ(train.size(), 60000);
  EXPECT_EQ(test.size(), 10000);
  EXPECT_EQ(train.example_shape(), (Shape{1, 28, 28}));
  EXPECT_EQ(test.labels[0].item<int64_t>(), 7);
  EXPECT_EQ(train.labels[0].item<int64_t>(), 5);
  EXPECT_EQ(test.images.min().item<float>(), 0.0f);
  EXPECT_EQ(test.images.max().item<float>(), 1.0f);
  EXPECT_EQ(train.labels.max().item<int64_t>(), 9);
  // fetch_mnist finds verified files already in place and does not touch the network.
  TempDir tmp;
  fs::create_directories(tmp.path / "mnist");
  for (const auto& f : mnist_files()) fs::create_symlink(dir / f.name, tmp.path / "mnist" / f.name);
  std::ostringstream log;
  EXPECT_EQ(fetch_mnist(tmp.path.string(), log), (tmp.path / "mnist").string());
  EXPECT_THAT(log.str(), HasSubstr("already"));
}

TEST(RealData, FashionMnist) {
  const fs::path dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(dir / "train-images-idx3-ubyte.gz") && !fs::exists(dir / "train-images-idx3-ubyte"))
    GTEST_SKIP() << "Fashion-MNIST not found in " << dir.string() << " (Debian package dataset-fashion-mnist)";
  TempDir empty;  // no fashion-mnist/ in the data dir: falls back to /usr/share/datasets
  const Dataset train = load_dataset("fashion-mnist", Split::kTrain, {empty.path.string(), ""});
  const Dataset test = load_dataset("fashion-mnist", Split::kTest, {empty.path.string(), ""});
  EXPECT_EQ(train.size(), 60000);
  EXPECT_EQ(test.size(), 10000);
  EXPECT_EQ(test.example_shape(), (Shape{1, 28, 28}));
  EXPECT_EQ(test.labels.max().item<int64_t>(), 9);
}

TEST(RealData, Cifar10Subset) {
  std::string dir;
  if (const char* env = std::getenv("IMBENCH_CIFAR10_DIR"); env && *env) dir = env;
#ifdef IMBENCH_SOURCE_DIR
  if (dir.empty()) dir = std::string(IMBENCH_SOURCE_DIR) + "/../shared/data/cifar10-subset";
#endif
  if (dir.empty() || !fs::exists(fs::path(dir) / "test_batch.bin"))
    GTEST_SKIP() << "CIFAR-10 not found (set IMBENCH_CIFAR10_DIR; looked in '" << dir << "')";
  const Dataset train = load_dataset("cifar10", Split::kTrain, {"", dir});
  const Dataset test = load_dataset("cifar10", Split::kTest, {"", dir});
  const bool subset = train.size() == 8068;  // the project's exact subset, or else the full official data
  EXPECT_TRUE(subset || train.size() == 50000) << train.size();
  EXPECT_EQ(test.size(), subset ? 1017 : 10000);
  EXPECT_EQ(train.example_shape(), (Shape{3, 32, 32}));
  EXPECT_EQ(test.example_shape(), (Shape{3, 32, 32}));
  for (const Dataset* ds : {&train, &test}) {
    EXPECT_EQ(ds->labels.min().item<int64_t>(), 0);
    EXPECT_EQ(ds->labels.max().item<int64_t>(), 9);
    EXPECT_GE(ds->images.min().item<float>(), 0.0f);
    EXPECT_LE(ds->images.max().item<float>(), 1.0f);
  }
  // The official order: the first test image is a cat, the first training image a frog.
  EXPECT_EQ(test.labels[0].item<int64_t>(), 3);
  EXPECT_EQ(train.labels[0].item<int64_t>(), 6);
  // The folder's own checksums, where it has them, agree with our SHA-256.
  std::ifstream sums(fs::path(dir) / "SHA256SUMS");
  std::string hex, name;
  while (sums >> hex >> name) EXPECT_EQ(sha256_file((fs::path(dir) / name).string()), hex) << name;
}

// ---------------------------------------------------------------- test sets of your own

namespace {

// Fixtures written by hand, independent of the reader: .npy files, zip
// archives (stored or raw deflate, with numpy's zip64 extra field in each
// local header) and HDF5 files.

template <typename T>
Bytes bytes_of(const std::vector<T>& v) {
  Bytes out(v.size() * sizeof(T));
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

Bytes npy_bytes(const std::string& descr, const Shape& shape, const Bytes& data, bool fortran = false) {
  std::string dims;
  for (auto d : shape) dims += std::to_string(d) + ", ";
  if (shape.size() > 1)
    dims.erase(dims.size() - 2);
  else if (!shape.empty())
    dims.pop_back();  // "(3,)"
  std::string header =
      fmt::format("{{'descr': '{}', 'fortran_order': {}, 'shape': ({}), }}", descr, fortran ? "True" : "False", dims);
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  Bytes out{0x93,
            'N',
            'U',
            'M',
            'P',
            'Y',
            1,
            0,
            static_cast<std::uint8_t>(header.size() & 0xff),
            static_cast<std::uint8_t>(header.size() >> 8)};
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

void put16(Bytes& b, std::uint32_t v) {
  b.push_back(static_cast<std::uint8_t>(v));
  b.push_back(static_cast<std::uint8_t>(v >> 8));
}
void put32(Bytes& b, std::uint32_t v) {
  put16(b, v & 0xffff);
  put16(b, v >> 16);
}

Bytes raw_deflate(const Bytes& in) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  Bytes out(deflateBound(&z, static_cast<uLong>(in.size())));
  z.next_in = const_cast<std::uint8_t*>(in.data());
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

struct ZipEntry {
  std::string name;
  Bytes data;
};

// A zip archive like numpy.savez (method 0) or savez_compressed (method 8) writes.
Bytes zip_bytes(const std::vector<ZipEntry>& entries, int method) {
  Bytes out, cd;
  for (const auto& e : entries) {
    const Bytes stored = method == 8 ? raw_deflate(e.data) : e.data;
    const auto crc = static_cast<std::uint32_t>(crc32(0, e.data.data(), static_cast<uInt>(e.data.size())));
    const auto offset = static_cast<std::uint32_t>(out.size());
    Bytes extra;  // zip64 extended information, as numpy's force_zip64 writes it
    put16(extra, 1);
    put16(extra, 16);
    put32(extra, static_cast<std::uint32_t>(e.data.size()));
    put32(extra, 0);
    put32(extra, static_cast<std::uint32_t>(stored.size()));
    put32(extra, 0);
    put32(out, 0x04034b50);
    put16(out, 45);
    put16(out, 0);
    put16(out, static_cast<std::uint32_t>(method));
    put32(out, 0);
    put32(out, crc);
    put32(out, 0xffffffffu);
    put32(out, 0xffffffffu);
    put16(out, static_cast<std::uint32_t>(e.name.size()));
    put16(out, static_cast<std::uint32_t>(extra.size()));
    out.insert(out.end(), e.name.begin(), e.name.end());
    out.insert(out.end(), extra.begin(), extra.end());
    out.insert(out.end(), stored.begin(), stored.end());
    put32(cd, 0x02014b50);
    put16(cd, 20);
    put16(cd, 20);
    put16(cd, 0);
    put16(cd, static_cast<std::uint32_t>(method));
    put32(cd, 0);
    put32(cd, crc);
    put32(cd, static_cast<std::uint32_t>(stored.size()));
    put32(cd, static_cast<std::uint32_t>(e.data.size()));
    put16(cd, static_cast<std::uint32_t>(e.name.size()));
    put16(cd, 0);
    put16(cd, 0);
    put16(cd, 0);
    put16(cd, 0);
    put32(cd, 0);
    put32(cd, offset);
    cd.insert(cd.end(), e.name.begin(), e.name.end());
  }
  const auto cd_offset = static_cast<std::uint32_t>(out.size());
  out.insert(out.end(), cd.begin(), cd.end());
  put32(out, 0x06054b50);
  put16(out, 0);
  put16(out, 0);
  put16(out, static_cast<std::uint32_t>(entries.size()));
  put16(out, static_cast<std::uint32_t>(entries.size()));
  put32(out, static_cast<std::uint32_t>(cd.size()));
  put32(out, cd_offset);
  put16(out, 0);
  return out;
}

// Six 2x3 images with pixel k of image i = (6 i + k) / 36, labels i % 3.
constexpr int64_t kOwnN = 6;
std::vector<float> own_pixels() {
  std::vector<float> v(kOwnN * 6);
  for (std::size_t k = 0; k < v.size(); ++k) v[k] = static_cast<float>(k) / 36.0f;
  return v;
}
std::vector<int64_t> own_labels() {
  std::vector<int64_t> v(kOwnN);
  for (int64_t i = 0; i < kOwnN; ++i) v[static_cast<std::size_t>(i)] = i % 3;
  return v;
}
Bytes own_x_npy() { return npy_bytes("<f4", {kOwnN, 2, 3}, bytes_of(own_pixels())); }
Bytes own_y_npy() { return npy_bytes("<i8", {kOwnN}, bytes_of(own_labels())); }

void expect_own_data(const Dataset& ds, const std::string& spec) {
  EXPECT_EQ(ds.name, spec);
  EXPECT_EQ(ds.split, "test");
  EXPECT_EQ(ds.images.sizes().vec(), (Shape{kOwnN, 1, 2, 3}));
  EXPECT_EQ(ds.images.scalar_type(), torch::kFloat32);
  const auto want = torch::tensor(own_pixels()).reshape({kOwnN, 1, 2, 3});
  EXPECT_TRUE(torch::allclose(ds.images, want, 0, 1e-7)) << spec;
  EXPECT_EQ(labels_of(ds), own_labels());
  EXPECT_EQ(ds.num_classes, 3);
  EXPECT_TRUE(ds.num_classes_from_labels);
  EXPECT_THAT(ds.source, HasSubstr(spec));
}

// An HDF5 file with the given datasets (name -> type, shape, data), optionally num_classes on "y".
struct H5Array {
  std::string name;
  const H5::PredType* type;
  std::vector<hsize_t> dims;
  Bytes data;
};
void write_h5(const std::string& path, const std::vector<H5Array>& arrays, std::optional<int64_t> num_classes = {},
              bool chunked = false) {
  H5::H5File f(path, H5F_ACC_TRUNC);
  for (const auto& a : arrays) {
    const auto slash = a.name.rfind('/');
    if (slash != std::string::npos && !f.nameExists(a.name.substr(0, slash))) f.createGroup(a.name.substr(0, slash));
    H5::DataSpace space(static_cast<int>(a.dims.size()), a.dims.data());
    H5::DSetCreatPropList props;
    if (chunked) {
      props.setChunk(static_cast<int>(a.dims.size()), a.dims.data());
      props.setDeflate(4);
    }
    auto ds = f.createDataSet(a.name, *a.type, space, props);
    ds.write(a.data.data(), *a.type);
    if (num_classes && a.name == "y") {
      H5::DataSpace scalar;
      ds.createAttribute("num_classes", H5::PredType::NATIVE_INT64, scalar)
          .write(H5::PredType::NATIVE_INT64, &*num_classes);
    }
  }
}
std::vector<H5Array> own_h5(const std::string& x = "x", const std::string& y = "y") {
  return {{x, &H5::PredType::NATIVE_FLOAT, {kOwnN, 2, 3}, bytes_of(own_pixels())},
          {y, &H5::PredType::NATIVE_INT64, {kOwnN}, bytes_of(own_labels())}};
}

}  // namespace

TEST(OwnData, SpecSpelling) {
  for (const char* name : {"mnist", "fashion-mnist", "cifar10", "synthetic", "minst"})
    EXPECT_FALSE(is_file_dataset(name)) << name;
  for (const char* spec : {"my.h5", "my.HDF5", "my.npz", "a.npy,b.npy", "my.h5:images,labels", "data/my", "x.npy"})
    EXPECT_TRUE(is_file_dataset(spec)) << spec;
  auto s = parse_file_dataset("dir/my.h5:grp/images,labels");
  EXPECT_EQ(s.format, FileFormat::kHdf5);
  EXPECT_EQ(s.path, "dir/my.h5");
  EXPECT_EQ(s.x_name, "grp/images");
  EXPECT_EQ(s.y_name, "labels");
  s = parse_file_dataset("my.npz");
  EXPECT_EQ(s.format, FileFormat::kNpz);
  EXPECT_EQ(s.x_name, "x");
  EXPECT_EQ(s.y_name, "y");
  s = parse_file_dataset("a/x.npy,b/y.npy");
  EXPECT_EQ(s.format, FileFormat::kNpyPair);
  EXPECT_EQ(s.path, "a/x.npy");
  EXPECT_EQ(s.labels_path, "b/y.npy");
  EXPECT_THAT(error_of<UsageError>([] { parse_file_dataset("x.npy"); }), HasAll("x.npy", "X.npy,Y.npy"));
  EXPECT_THAT(error_of<UsageError>([] { parse_file_dataset("data/my.bin"); }), HasAll("data/my.bin", ".h5", ".npz"));
  EXPECT_THAT(error_of<UsageError>([] { parse_file_dataset("my.npz:x"); }), HasAll("my.npz:x", "my.npz:x,y"));
  // An unknown registry name points at the file spelling too.
  EXPECT_THAT(error_of<UsageError>([] { load_dataset("minst", Split::kTest); }), HasAll("mnist", "FILE.npz"));
}

TEST(OwnData, NpyPairFloat32) {
  TempDir tmp;
  write_bytes(tmp.file("x.npy"), own_x_npy());
  write_bytes(tmp.file("y.npy"), own_y_npy());
  const std::string spec = tmp.file("x.npy") + "," + tmp.file("y.npy");
  expect_own_data(load_dataset(spec, Split::kTest), spec);
  EXPECT_THAT(error_of<UsageError>([&] { load_dataset(spec, Split::kTrain); }),
              HasAll(spec, "test set", "--split train"));
}

TEST(OwnData, NpyDtypes) {
  TempDir tmp;
  const std::string x = tmp.file("x.npy"), y = tmp.file("y.npy"), spec = x + "," + y;
  // float64 images [N, C, H, W] and int32 labels.
  const auto pixels = own_pixels();
  const auto labels64 = own_labels();
  std::vector<double> px(pixels.begin(), pixels.end());
  std::vector<int32_t> l32(labels64.begin(), labels64.end());
  write_bytes(x, npy_bytes("<f8", {kOwnN, 1, 2, 3}, bytes_of(px)));
  write_bytes(y, npy_bytes("<i4", {kOwnN}, bytes_of(l32)));
  expect_own_data(load_dataset(spec, Split::kTest), spec);
  // uint8 images are scaled by 1/255; uint8, int16 and uint16 labels.
  Bytes u8(kOwnN * 6);
  for (std::size_t k = 0; k < u8.size(); ++k) u8[k] = static_cast<std::uint8_t>(k * 7);
  write_bytes(x, npy_bytes("|u1", {kOwnN, 2, 3}, u8));
  for (const char* descr : {"|u1", "<i2", "<u2", "<u8", "|i1"}) {
    const int size = descr[2] - '0';
    Bytes labels(kOwnN * size, 0);
    for (int64_t i = 0; i < kOwnN; ++i) labels[i * size] = static_cast<std::uint8_t>(i % 3);
    write_bytes(y, npy_bytes(descr, {kOwnN}, labels));
    const Dataset ds = load_dataset(spec, Split::kTest);
    EXPECT_EQ(labels_of(ds), own_labels()) << descr;
    EXPECT_FLOAT_EQ(ds.images.flatten()[5].item<float>(), 35.0f / 255.0f);
    EXPECT_THAT(ds.source, HasSubstr("scaled by 1/255"));
  }
}

TEST(OwnData, NpzStoredAndDeflate) {
  TempDir tmp;
  for (int method : {0, 8}) {
    const std::string path = tmp.file(fmt::format("own-{}.npz", method));
    write_bytes(path, zip_bytes({{"x.npy", own_x_npy()}, {"y.npy", own_y_npy()}}, method));
    expect_own_data(load_dataset(path, Split::kTest), path);
    // Other names, given after ':'.
    const std::string named = tmp.file(fmt::format("named-{}.npz", method));
    write_bytes(named, zip_bytes({{"labels.npy", own_y_npy()}, {"images.npy", own_x_npy()}}, method));
    expect_own_data(load_dataset(named + ":images,labels", Split::kTest), named + ":images,labels");
    EXPECT_THAT(error_of<Error>([&] { load_dataset(named, Split::kTest); }),
                HasAll(named, "no array 'x'", "labels, images"));
  }
}

TEST(OwnData, Hdf5) {
  TempDir tmp;
  const std::string path = tmp.file("own.h5");
  write_h5(path, own_h5());
  expect_own_data(load_dataset(path, Split::kTest), path);
  // Chunked and compressed, other names in a group, int32 labels, a num_classes attribute.
  const std::string named = tmp.file("named.hdf5");
  const auto labels64 = own_labels();
  std::vector<int32_t> l32(labels64.begin(), labels64.end());
  write_h5(named,
           {{"data/images", &H5::PredType::NATIVE_FLOAT, {kOwnN, 1, 2, 3}, bytes_of(own_pixels())},
            {"data/labels", &H5::PredType::NATIVE_INT32, {kOwnN}, bytes_of(l32)}},
           std::nullopt, true);
  expect_own_data(load_dataset(named + ":data/images,data/labels", Split::kTest), named + ":data/images,data/labels");
  write_h5(path, own_h5(), 10);
  const Dataset ten = load_dataset(path, Split::kTest);
  EXPECT_EQ(ten.num_classes, 10);
  EXPECT_FALSE(ten.num_classes_from_labels);
  EXPECT_FALSE(ten.classes_fit(11));
  write_h5(path, own_h5(), 2);
  EXPECT_THAT(error_of<Error>([&] { load_dataset(path, Split::kTest); }),
              HasAll(path, "dataset y", "label 2 of example 2", "out of range 0-1"));
  // uint8 images and uint8 labels.
  Bytes u8(kOwnN * 6, 255), l8(kOwnN, 1);
  write_h5(path,
           {{"x", &H5::PredType::NATIVE_UINT8, {kOwnN, 2, 3}, u8}, {"y", &H5::PredType::NATIVE_UINT8, {kOwnN}, l8}});
  const Dataset u = load_dataset(path, Split::kTest);
  EXPECT_EQ(u.images.max().item<float>(), 1.0f);
  EXPECT_EQ(u.num_classes, 2);
  EXPECT_TRUE(u.classes_fit(10));
  EXPECT_FALSE(u.classes_fit(1));
  // Unknown names list what the file holds.
  EXPECT_THAT(error_of<Error>([&] { load_dataset(path + ":images,y", Split::kTest); }),
              HasAll(path, "no dataset 'images'", "x, y"));
  EXPECT_THAT(error_of<Error>([&] { load_dataset(named, Split::kTest); }), HasAll(named, "no dataset 'x'", "data"));
  // Not HDF5 at all, and a truncated file: one line naming the file.
  write_bytes(tmp.file("junk.h5"), Bytes(100, 7));
  EXPECT_THAT(error_of<Error>([&] { load_dataset(tmp.file("junk.h5"), Split::kTest); }),
              HasAll(tmp.file("junk.h5"), "cannot read as HDF5"));
  write_h5(path, own_h5());
  Bytes whole = read_bytes(path);
  whole.resize(whole.size() - 40);
  write_bytes(path, whole);
  const std::string cut = error_of<Error>([&] { load_dataset(path, Split::kTest); });
  EXPECT_THAT(cut, HasAll(path, "truncated"));
  EXPECT_EQ(cut.find('\n'), std::string::npos);
  // A damaged structure libhdf5 1.10.8 would follow blindly is refused by the
  // HDF5 guard (h5guard/guard.h) first: here the root group's local heap
  // loses every NUL byte, so no link name ends inside it (HDF5's strlen ran
  // past the heap).
  write_h5(path, own_h5());
  Bytes heap = read_bytes(path);
  const std::string text(heap.begin(), heap.end());
  const std::size_t h = text.find("HEAP");
  ASSERT_NE(h, std::string::npos);
  const auto le8 = [&](std::size_t at) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | heap[at + static_cast<std::size_t>(i)];
    return static_cast<std::size_t>(v);
  };
  const std::size_t size = le8(h + 8), data = le8(h + 24);
  ASSERT_LE(data + size, heap.size());
  std::fill(heap.begin() + static_cast<std::ptrdiff_t>(data), heap.begin() + static_cast<std::ptrdiff_t>(data + size), 'Z');
  write_bytes(path, heap);
  const std::string damaged = error_of<Error>([&] { load_dataset(path, Split::kTest); });
  EXPECT_THAT(damaged, HasAll(path, "damaged HDF5 file", "without a terminating NUL byte"));
  EXPECT_EQ(damaged.find('\n'), std::string::npos);
}

TEST(OwnData, TruncatedFiles) {
  TempDir tmp;
  const std::string x = tmp.file("x.npy"), y = tmp.file("y.npy");
  Bytes xb = own_x_npy();
  xb.resize(xb.size() - 4);
  write_bytes(x, xb);
  write_bytes(y, own_y_npy());
  EXPECT_THAT(error_of<Error>([&] { load_dataset(x + "," + y, Split::kTest); }),
              HasAll(x, "truncated", "float32 [6, 2, 3]", "144 data bytes", "140"));
  write_bytes(x, Bytes(xb.begin(), xb.begin() + 30));  // inside the header
  EXPECT_THAT(error_of<Error>([&] { load_dataset(x + "," + y, Split::kTest); }), HasAll(x, "truncated .npy header"));
  for (int method : {0, 8}) {
    const std::string path = tmp.file(fmt::format("cut-{}.npz", method));
    Bytes z = zip_bytes({{"x.npy", own_x_npy()}, {"y.npy", own_y_npy()}}, method);
    write_bytes(path, Bytes(z.begin(), z.begin() + static_cast<std::ptrdiff_t>(z.size() / 2)));
    EXPECT_THAT(error_of<Error>([&] { load_dataset(path, Split::kTest); }), HasAll(path, "truncated"));
    // A corrupt byte in the data: the CRC (stored) or the deflate stream catches it.
    z[120] ^= 0x55;
    write_bytes(path, z);
    EXPECT_THAT(error_of<Error>([&] { load_dataset(path, Split::kTest); }), HasSubstr(path));
  }
}

TEST(OwnData, BadContents) {
  TempDir tmp;
  const std::string x = tmp.file("x.npy"), y = tmp.file("y.npy"), spec = x + "," + y;
  auto check = [&](const Bytes& xb, const Bytes& yb, const std::string& what, const std::vector<std::string>& parts) {
    write_bytes(x, xb);
    write_bytes(y, yb);
    const std::string e = error_of<Error>([&] { load_dataset(spec, Split::kTest); });
    for (const auto& p : parts) EXPECT_THAT(e, HasSubstr(p)) << what;
    EXPECT_EQ(e.find('\n'), std::string::npos) << what;
  };
  const auto px = own_pixels();
  check(npy_bytes("<f4", {kOwnN * 6}, bytes_of(px)), own_y_npy(), "1-D images",
        {x, "[36]", "[N, C, H, W] or [N, H, W]"});
  check(own_x_npy(), npy_bytes("<i8", {kOwnN, 1}, bytes_of(own_labels())), "2-D labels", {y, "[6, 1]", "expected [N]"});
  check(own_x_npy(), npy_bytes("<i8", {kOwnN - 1}, Bytes(8 * (kOwnN - 1), 0)), "mismatched N",
        {x, "6 images", y, "5 labels"});
  check(npy_bytes("<f4", {0, 2, 3}, {}), npy_bytes("<i8", {0}, {}), "no examples", {x, "N = 0"});
  auto nan = px;
  nan[14] = std::nanf("");
  check(npy_bytes("<f4", {kOwnN, 2, 3}, bytes_of(nan)), own_y_npy(), "NaN", {x, "image 2", "NaN or Inf"});
  auto inf = px;
  inf[35] = INFINITY;
  check(npy_bytes("<f4", {kOwnN, 2, 3}, bytes_of(inf)), own_y_npy(), "Inf", {x, "image 5", "NaN or Inf"});
  auto negative = own_labels();
  negative[4] = -1;
  check(own_x_npy(), npy_bytes("<i8", {kOwnN}, bytes_of(negative)), "negative label", {y, "label -1 of example 4"});
  check(npy_bytes("<f4", {kOwnN, 2, 3}, bytes_of(px), true), own_y_npy(), "Fortran order",
        {x, "Fortran-ordered", "C-ordered"});
  check(npy_bytes(">f4", {kOwnN, 2, 3}, bytes_of(px)), own_y_npy(), "big-endian", {x, "big-endian"});
  check(npy_bytes("<i4", {kOwnN, 2, 3}, Bytes(kOwnN * 24, 0)), own_y_npy(), "int images", {x, "int32", "float32"});
  check(own_x_npy(), npy_bytes("<f4", {kOwnN}, Bytes(kOwnN * 4, 0)), "float labels", {y, "float32", "integer"});
  check(npy_bytes("<U3", {kOwnN, 2, 3}, Bytes(kOwnN * 18, 0)), own_y_npy(), "strings", {x, "<U3"});
  check(Bytes{'P', 'K', 3, 4, 0, 0, 0, 0, 0, 0, 0, 0}, own_y_npy(), "not .npy", {x, "not a .npy file"});
  // A header length over the bound is refused before anything is allocated.
  Bytes huge{0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0, 0, 0, 0x40};
  check(huge, own_y_npy(), "huge header", {x, "implausibly large"});
}

TEST(OwnData, NotRegularFilesAndZip64) {
  TempDir tmp;
  fs::create_directories(tmp.file("dir.npz"));
  EXPECT_THAT(error_of<Error>([&] { load_dataset(tmp.file("dir.npz"), Split::kTest); }),
              HasAll(tmp.file("dir.npz"), "is a directory"));
  EXPECT_THAT(error_of<Error>([&] { load_dataset(tmp.file("none.h5"), Split::kTest); }),
              HasAll(tmp.file("none.h5"), "no such file"));
  ASSERT_EQ(::mkfifo(tmp.file("fifo.npy").c_str(), 0600), 0);
  write_bytes(tmp.file("y.npy"), own_y_npy());
  EXPECT_THAT(error_of<Error>([&] { load_dataset(tmp.file("fifo.npy") + "," + tmp.file("y.npy"), Split::kTest); }),
              HasAll(tmp.file("fifo.npy"), "not a regular file"));
  // The end record of a zip64 archive: the offset field saturated.
  Bytes z = zip_bytes({{"x.npy", own_x_npy()}, {"y.npy", own_y_npy()}}, 0);
  for (std::size_t i = z.size() - 6; i < z.size() - 2; ++i) z[i] = 0xff;
  write_bytes(tmp.file("big.npz"), z);
  EXPECT_THAT(error_of<Error>([&] { load_dataset(tmp.file("big.npz"), Split::kTest); }),
              HasAll(tmp.file("big.npz"), "zip64", "not supported"));
  write_bytes(tmp.file("plain.npz"), own_x_npy());
  EXPECT_THAT(error_of<Error>([&] { load_dataset(tmp.file("plain.npz"), Split::kTest); }),
              HasAll(tmp.file("plain.npz"), "not a zip archive"));
}
