#include "models/checkpoint.h"

#include <fmt/format.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/errors.h"
#include "core/input_file.h"
#include "core/sha256.h"
#include "core/version.h"
#include "data/idx.h"
#include "models/train.h"

namespace fs = std::filesystem;

namespace imbench::models {
namespace {
const std::string kMagic = "IMBENCH-CHECKPOINT";

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// A cursor over the file's bytes that names the file in every error.
struct Reader {
  const std::string& bytes;
  const std::string& path;
  std::size_t pos = 0;
  std::string line() {
    const auto end = bytes.find('\n', pos);
    if (end == std::string::npos || end - pos > 256)
      throw Error(fmt::format("{}: truncated or not an imbench checkpoint (bad header at byte {})", path, pos));
    std::string l = bytes.substr(pos, end - pos);
    pos = end + 1;
    return l;
  }
  std::string section(const std::string& name, std::uint64_t max_len) {
    const std::string head = line();
    std::istringstream in(head);
    std::string got;
    std::size_t len = 0;
    if (!(in >> got >> len) || got != name)
      throw Error(fmt::format("{}: corrupt checkpoint: expected section '{}', found '{}'", path, name, head));
    if (len > max_len)
      throw Error(fmt::format("{}: corrupt checkpoint: section '{}' declares {} bytes, more than the {} allowed", path,
                              name, len, max_len));
    if (len >= bytes.size() - pos)  // pos <= bytes.size(); the section and its newline must fit
      throw Error(fmt::format("{}: truncated checkpoint: section '{}' needs {} bytes, {} remain", path, name, len,
                              bytes.size() - pos));
    std::string body = bytes.substr(pos, len);
    pos += len;
    if (bytes[pos] != '\n') throw Error(fmt::format("{}: corrupt checkpoint after section '{}'", path, name));
    ++pos;
    return body;
  }
};

// The file's bytes, bounded before they are read.
std::string read_checkpoint_bytes(const std::string& path) {
  const auto size = check_input_file(path, "checkpoint", kMaxCheckpointBytes);
  if (size == 0) throw Error(fmt::format("{}: the file is empty, not an imbench checkpoint", path));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open for reading", path));
  std::string bytes(size, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(size));
  if (static_cast<std::uint64_t>(in.gcount()) != size)
    throw Error(fmt::format("{}: read error (the file changed while it was read?)", path));
  return bytes;
}

// Parameters every family has at least: the weights from the input through
// the hidden layers, and one per class. Saturates instead of overflowing.
std::uint64_t min_parameter_count(const ModelSpec& spec) {
  constexpr std::uint64_t kHuge = std::uint64_t{1} << 62;
  auto mul = [](std::uint64_t a, std::uint64_t b) { return a != 0 && b > kHuge / a ? kHuge : a * b; };
  std::vector<std::uint64_t> widths{1};
  for (auto d : spec.input_shape) widths.back() = mul(widths.back(), static_cast<std::uint64_t>(d));
  for (auto h : spec.hidden) widths.push_back(static_cast<std::uint64_t>(h));
  std::uint64_t n = static_cast<std::uint64_t>(spec.num_classes);
  for (std::size_t i = 0; i + 1 < widths.size(); ++i) n = std::min(kHuge, n + mul(widths[i], widths[i + 1]));
  return n;
}

// The recorded architecture must be valid and small enough for the weight
// section (float32: 4 bytes per parameter) before the model is built: a
// header that declares hidden widths of 100000 or a billion classes must not
// allocate.
void check_spec_against_weights(const ModelSpec& spec, std::size_t weight_bytes, const std::string& path) {
  try {
    spec.validate();
  } catch (const std::exception& e) {
    throw Error(fmt::format("{}: the recorded architecture is invalid: {}", path, e.what()));
  }
  const std::uint64_t params = min_parameter_count(spec);
  if (params > weight_bytes / 4)
    throw Error(
        fmt::format("{}: the recorded architecture {} needs at least {} parameters ({} as float32) but the "
                    "weight section holds {}",
                    path, spec.layer_string(), params, byte_size_text(params * 4), byte_size_text(weight_bytes)));
}

}  // namespace

ParsedCheckpoint parse_checkpoint(const std::string& bytes, const std::string& path) {
  if (bytes.rfind(kMagic + " ", 0) != 0)
    throw Error(fmt::format("{}: not an imbench checkpoint (missing '{}' header)", path, kMagic));
  Reader r{bytes, path};
  const std::string first = r.line();
  const std::string version = first.substr(kMagic.size() + 1);
  if (version != std::to_string(kCheckpointFormatVersion))
    throw Error(fmt::format("{}: checkpoint format version {} is not supported (this imbench reads version {})", path,
                            version, kCheckpointFormatVersion));
  const std::string meta_text = r.section("meta", kMaxCheckpointMetaBytes);
  std::string weights = r.section("weights", kMaxCheckpointBytes);
  const std::size_t signed_end = r.pos;
  const std::string sum_line = r.line();
  if (sum_line.rfind("sha256 ", 0) != 0) throw Error(fmt::format("{}: corrupt checkpoint: missing checksum line", path));
  if (r.pos != bytes.size()) throw Error(fmt::format("{}: corrupt checkpoint: {} unexpected trailing bytes", path, bytes.size() - r.pos));
  const std::string want = sum_line.substr(7);
  const std::string got = sha256_hex(bytes.substr(0, signed_end));
  if (got != want)
    throw Error(
        fmt::format("{}: checkpoint checksum mismatch (file is corrupted): recorded {}, computed {}", path, want, got));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(meta_text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: checkpoint metadata is not valid JSON: {}", path, e.what()));
  }
  if (!j.is_object()) throw Error(fmt::format("{}: checkpoint metadata is not a JSON object", path));
  if (j.value("format", std::string()) != "imbench-checkpoint")
    throw Error(fmt::format("{}: checkpoint metadata: format must be \"imbench-checkpoint\"", path));
  if (!j.contains("format_version") || j["format_version"] != kCheckpointFormatVersion)
    throw Error(
        fmt::format("{}: checkpoint metadata format_version {} is not supported (this imbench reads version {})", path,
                    j.contains("format_version") ? j["format_version"].dump() : "(missing)", kCheckpointFormatVersion));
  ParsedCheckpoint out;
  try {
    out.meta = CheckpointMeta::from_json(j);
  } catch (const std::exception& e) {
    throw Error(fmt::format("{}: checkpoint metadata incomplete: {}", path, e.what()));
  }
  check_spec_against_weights(out.meta.spec, weights.size(), path);
  out.weights = std::move(weights);
  return out;
}

namespace {
ParsedCheckpoint parse(const std::string& path) { return parse_checkpoint(read_checkpoint_bytes(path), path); }
}  // namespace

nlohmann::json CheckpointMeta::to_json() const {
  return {{"format", "imbench-checkpoint"}, {"format_version", kCheckpointFormatVersion},
          {"spec", spec.to_json()},         {"training", training},
          {"metrics", metrics},             {"imbench_version", imbench_version},
          {"git_revision", git_revision},   {"torch_version", torch_version},
          {"created_utc", created_utc},     {"weights_sha256", weights_sha256}};
}

CheckpointMeta CheckpointMeta::from_json(const nlohmann::json& j) {
  CheckpointMeta m;
  m.spec = ModelSpec::from_json(j.at("spec"));
  m.training = j.at("training");
  m.metrics = j.at("metrics");
  m.imbench_version = j.at("imbench_version").get<std::string>();
  m.git_revision = j.at("git_revision").get<std::string>();
  m.torch_version = j.at("torch_version").get<std::string>();
  m.created_utc = j.at("created_utc").get<std::string>();
  m.weights_sha256 = j.at("weights_sha256").get<std::string>();
  return m;
}

void save_checkpoint(const std::string& path, TrainableModel& model, CheckpointMeta meta) {
  std::ostringstream weights;
  {
    torch::serialize::OutputArchive archive;
    const auto device = model.device();
    model.to(torch::kCPU);  // checkpoints are device-neutral
    model.module().save(archive);
    archive.save_to(weights);
    model.to(device);
  }
  const std::string w = weights.str();
  meta.spec = model.spec();
  meta.imbench_version = kVersion;
  meta.git_revision = kGitRevision;
  meta.torch_version = TORCH_VERSION;
  meta.created_utc = utc_now();
  meta.weights_sha256 = sha256_hex(w);
  const std::string meta_text = meta.to_json().dump(2);
  std::string body = fmt::format("{} {}\nmeta {}\n", kMagic, kCheckpointFormatVersion, meta_text.size());
  body += meta_text;
  body += fmt::format("\nweights {}\n", w.size());
  body += w;
  body += "\n";
  body += fmt::format("sha256 {}\n", sha256_hex(body));

  write_file_atomically(path, body);
}

CheckpointMeta read_checkpoint_meta(const std::string& path) { return parse(path).meta; }

bool is_checkpoint_file(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return false;
  std::ifstream in(path, std::ios::binary);
  std::string head(kMagic.size(), '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  return in && head == kMagic;
}

LoadedCheckpoint load_checkpoint(const std::string& path, torch::Device device) {
  ParsedCheckpoint f = parse(path);
  LoadedCheckpoint out;
  try {
    out.model = create_model(f.meta.spec);
  } catch (const std::exception& e) {
    throw Error(fmt::format("{}: cannot rebuild the recorded model: {}", path, e.what()));
  }
  auto& module = out.model->module();
  // Archive loading replaces tensors wholesale, so shapes are checked here.
  std::vector<std::pair<std::string, std::vector<int64_t>>> expected;
  for (const auto& p : module.named_parameters()) expected.emplace_back(p.key(), p.value().sizes().vec());
  for (const auto& b : module.named_buffers()) expected.emplace_back(b.key(), b.value().sizes().vec());
  try {
    torch::serialize::InputArchive archive;
    std::istringstream in(f.weights);
    archive.load_from(in);
    module.load(archive);
  } catch (const c10::Error& e) {
    std::string what = e.what_without_backtrace();
    throw Error(fmt::format("{}: weights do not match the recorded {} architecture {}: {}", path,
                            f.meta.spec.family, f.meta.spec.layer_string(), what.substr(0, what.find('\n'))));
  }
  std::size_t i = 0;
  for (const auto& p : module.named_parameters()) {
    if (p.value().sizes().vec() != expected[i].second)
      throw Error(fmt::format("{}: weight '{}' has shape [{}] but the recorded architecture needs [{}]", path, p.key(),
                              fmt::join(p.value().sizes(), ", "), fmt::join(expected[i].second, ", ")));
    ++i;
  }
  out.model->to(device);
  out.model->set_training(false);
  out.meta = std::move(f.meta);
  return out;
}

}  // namespace imbench::models
