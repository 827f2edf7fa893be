// The results data model (reports/results.h) and its HDF5 reader and writer
// (reports/results_io.h).
#include "reports/results.h"

#include <H5Cpp.h>
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cmath>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <utility>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "h5guard/guard.h"
#include "reports/h5_util.h"
#include "reports/results_io.h"

namespace fs = std::filesystem;

namespace imbench::reports {

bool CellResult::unreliable() const {
  return std::any_of(flags.begin(), flags.end(), [](const Flag& f) { return f.failed; });
}

void CellResult::summarise() {
  const auto n = static_cast<std::size_t>(size());
  if (repeats < 1) throw Error(fmt::format("cell '{}': repeats must be >= 1, got {}", id, repeats));
  const auto r = static_cast<std::size_t>(repeats);
  if (clean_correct.size() != r * n || adversarial_correct.size() != r * n || attacked.size() != n)
    throw Error(
        fmt::format("cell '{}': {} clean and {} adversarial records and {} attacked flags for {} repeats x {} "
                    "examples",
                    id, clean_correct.size(), adversarial_correct.size(), attacked.size(), r, n));
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto mean = [&](const std::vector<uint8_t>& v) {
    if (v.empty()) return nan;
    return static_cast<double>(std::count_if(v.begin(), v.end(), [](uint8_t x) { return x != 0; })) /
           static_cast<double>(v.size());
  };
  summary["clean_accuracy"] = mean(clean_correct);
  summary["robust_accuracy"] = mean(adversarial_correct);

  // Sample standard deviation (n - 1) of the per-repeat accuracies, as
  // attacks::AttackResult::robust_accuracy_std computes it.
  double std_dev = n == 0 ? nan : 0.0;
  if (n > 0 && r > 1) {
    std::vector<double> per_repeat(r);
    for (std::size_t k = 0; k < r; ++k)
      per_repeat[k] =
          mean(std::vector<uint8_t>(adversarial_correct.begin() + static_cast<std::ptrdiff_t>(k * n),
                                    adversarial_correct.begin() + static_cast<std::ptrdiff_t>((k + 1) * n)));
    double m = 0;
    for (double a : per_repeat) m += a;
    m /= static_cast<double>(r);
    double ss = 0;
    for (double a : per_repeat) ss += (a - m) * (a - m);
    std_dev = std::sqrt(ss / static_cast<double>(r - 1));
  }
  summary["robust_accuracy_std"] = std_dev;

  std::size_t always = 0;
  for (std::size_t i = 0; i < n; ++i) {
    bool all = true;
    for (std::size_t k = 0; k < r && all; ++k) all = adversarial_correct[k * n + i] != 0;
    always += all;
  }
  summary["robust_accuracy_worst"] = n == 0 ? nan : static_cast<double>(always) / static_cast<double>(n);
  summary["attacked_examples"] =
      static_cast<double>(std::count_if(attacked.begin(), attacked.end(), [](uint8_t x) { return x != 0; }));
}

const CellResult* ResultFile::find_cell(const std::string& id) const {
  for (const auto& c : cells)
    if (c.id == id) return &c;
  return nullptr;
}

const ModelInfo* ResultFile::find_model(const std::string& name) const {
  for (const auto& m : models)
    if (m.name == name) return &m;
  return nullptr;
}

// Helpers live in a named namespace: the reports folder compiles as one
// unity translation unit, so anonymous-namespace names must not collide
// with those of the folder's other files.
namespace results_h5 {
namespace {

// The per-attack records format of `imbench attack --out` in imbench before
// the results format replaced it: root attributes "attack", "threat_model",
// ..., and groups "white-box", "transfer-0", ...
constexpr const char* kAttackRecordsSchema = "imbench-attack-records";

// Attributes the writer owns on /cells/<id>; every other number attribute of
// a cell is a summary entry.
const std::set<std::string> kCellAttributes = {
    "order",    "id",          "model",        "attack",    "attack_kind",      "norm",         "eps",  "eps_text",
    "targeted", "target_rule", "source_model", "group",     "cascade_position", "threat_model", "hash", "config_json",
    "repeats",  "eot_samples", "flags",        "unreliable"};

// ---- writing ----

H5::StrType utf8_string_type() {
  H5::StrType type(H5::PredType::C_S1, H5T_VARIABLE);
  type.setCset(H5T_CSET_UTF8);
  return type;
}

// h5py reads an int8 enum {FALSE, TRUE} as numpy.bool_.
H5::EnumType bool_type() {
  H5::EnumType type(sizeof(int8_t));
  int8_t no = 0, yes = 1;
  type.insert("FALSE", &no);
  type.insert("TRUE", &yes);
  return type;
}

void put_string(H5::H5Object& obj, const std::string& key, const std::string& value) {
  const H5::StrType type = utf8_string_type();
  H5::Attribute a = obj.createAttribute(key, type, H5::DataSpace(H5S_SCALAR));
  a.write(type, value);
}

void put_number(H5::H5Object& obj, const std::string& key, double value) {
  H5::Attribute a = obj.createAttribute(key, H5::PredType::NATIVE_DOUBLE, H5::DataSpace(H5S_SCALAR));
  a.write(H5::PredType::NATIVE_DOUBLE, &value);
}

void put_int(H5::H5Object& obj, const std::string& key, int64_t value) {
  H5::Attribute a = obj.createAttribute(key, H5::PredType::NATIVE_INT64, H5::DataSpace(H5S_SCALAR));
  a.write(H5::PredType::NATIVE_INT64, &value);
}

void put_bool(H5::H5Object& obj, const std::string& key, bool value) {
  const H5::EnumType type = bool_type();
  int8_t v = value ? 1 : 0;
  H5::Attribute a = obj.createAttribute(key, type, H5::DataSpace(H5S_SCALAR));
  a.write(type, &v);
}


std::string flags_to_json(const std::vector<Flag>& flags) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& f : flags)
    j.push_back({{"check", f.check}, {"name", f.name}, {"failed", f.failed}, {"detail", f.detail}});
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool is_integer_root_attribute(const std::string& key) {
  return std::find(std::begin(kIntegerRootAttributes), std::end(kIntegerRootAttributes), key) !=
         std::end(kIntegerRootAttributes);
}

bool is_count_summary_entry(const std::string& key) {
  return std::find(std::begin(kCountSummaryEntries), std::end(kCountSummaryEntries), key) !=
         std::end(kCountSummaryEntries);
}

// A whole decimal integer ("12", "-3"), nothing else.
std::optional<int64_t> parse_int64(const std::string& s) {
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// The adversarial examples: [M, <shape>] float32 in chunks of whole rows of
// about 1 MiB, deflate-compressed (zero rows: an empty dataset).
// Values left in a results file (CellResult::adversarial_file) are copied
// from it, chunks as they are.
void write_adversarial(H5::Group& g, const CellResult& c) {
  std::vector<hsize_t> dims{static_cast<hsize_t>(c.adversarial_index.size())};
  hsize_t row = 1;
  for (auto d : c.adversarial_shape) {
    dims.push_back(static_cast<hsize_t>(d));
    row *= static_cast<hsize_t>(d);
  }
  if (c.adversarial.empty() && dims[0] > 0) {
    const std::string source = "/cells/" + c.id + "/adversarial";
    const H5::H5File from(c.adversarial_file, H5F_ACC_RDONLY);
    if (!from.nameExists("/cells/" + c.id) || !from.openGroup("/cells/" + c.id).nameExists("adversarial"))
      throw Error(fmt::format("cell '{}': its adversarial examples are not in {}", c.id, c.adversarial_file));
    const H5::DataSpace space = from.openDataSet(source).getSpace();
    std::vector<hsize_t> have(static_cast<std::size_t>(space.getSimpleExtentNdims()));
    space.getSimpleExtentDims(have.data());
    if (have != dims)
      throw Error(fmt::format("cell '{}': the adversarial examples in {} have shape [{}], expected [{}]", c.id,
                              c.adversarial_file, fmt::join(have, ", "), fmt::join(dims, ", ")));
    if (H5Ocopy(from.getId(), source.c_str(), g.getId(), "adversarial", H5P_DEFAULT, H5P_DEFAULT) < 0)
      throw Error(fmt::format("cell '{}': cannot copy its adversarial examples from {}", c.id, c.adversarial_file));
    h5::write_dataset(g, "adversarial_index", c.adversarial_index, H5::PredType::NATIVE_INT64, {dims[0]});
    return;
  }
  H5::DataSpace space(static_cast<int>(dims.size()), dims.data());
  H5::DSetCreatPropList props;
  if (dims[0] > 0) {
    std::vector<hsize_t> chunk = dims;
    chunk[0] = std::clamp<hsize_t>((hsize_t{1} << 18) / row, 1, dims[0]);  // 2^18 floats = 1 MiB
    props.setChunk(static_cast<int>(chunk.size()), chunk.data());
    props.setDeflate(4);
  }
  H5::DataSet ds = g.createDataSet("adversarial", H5::PredType::NATIVE_FLOAT, space, props);
  if (dims[0] > 0) ds.write(c.adversarial.data(), H5::PredType::NATIVE_FLOAT);
  h5::write_dataset(g, "adversarial_index", c.adversarial_index, H5::PredType::NATIVE_INT64, {dims[0]});
}

// A name usable as an HDF5 group name (no path separator).
bool valid_group_name(const std::string& s) { return !s.empty() && s != "." && s != ".." && s.find('/') == s.npos; }

// Everything write_results refuses, checked before any file is touched.
void validate(const std::string& path, const ResultFile& file) {
  auto fail = [&](const std::string& why) { throw Error(fmt::format("{}: not written: {}", path, why)); };
  for (const auto& [key, value] : file.root) {
    if (key.empty()) fail("a root attribute has an empty name");
    if (key == "schema" && value != kResultsSchema)
      fail(fmt::format("root attribute schema is '{}', expected '{}'", value, kResultsSchema));
    if (key == "schema_version" && value != std::to_string(kResultsSchemaVersion))
      fail(fmt::format("root attribute schema_version is '{}', expected {}", value, kResultsSchemaVersion));
    if (is_integer_root_attribute(key) && !parse_int64(value))
      fail(fmt::format("root attribute {} is '{}', expected an integer", key, value));
  }
  std::set<std::string> models, cells;
  for (const auto& m : file.models) {
    if (!valid_group_name(m.name)) fail(fmt::format("model name '{}' is empty or contains '/'", m.name));
    if (!models.insert(m.name).second) fail(fmt::format("model '{}' appears twice", m.name));
  }
  for (const auto& c : file.cells) {
    const std::string where = fmt::format("cell '{}'", c.id);
    if (!valid_group_name(c.id)) fail(fmt::format("{}: the id is empty or contains '/'", where));
    if (!cells.insert(c.id).second) fail(fmt::format("{} appears twice", where));
    if (!models.count(c.model)) fail(fmt::format("{}: model '{}' is not among the file's models", where, c.model));
    if (c.repeats < 1) fail(fmt::format("{}: repeats must be >= 1, got {}", where, c.repeats));
    if (c.eot_samples < 1) fail(fmt::format("{}: eot_samples must be >= 1, got {}", where, c.eot_samples));
    if (std::isnan(c.eps)) fail(fmt::format("{}: eps is NaN", where));
    const auto n = c.index.size(), rn = static_cast<std::size_t>(c.repeats) * n;
    auto expect = [&](const char* name, std::size_t have, std::size_t want, const char* shape) {
      if (have != want)
        fail(fmt::format("{}: {} has {} values, expected {} ({}; {} examples, {} repeats)", where, name, have, want,
                         shape, n, c.repeats));
    };
    expect("label", c.label.size(), n, "[N]");
    expect("target", c.target.size(), c.targeted ? n : 0,
           c.targeted ? "[N] for a targeted attack" : "none when untargeted");
    expect("attacked", c.attacked.size(), n, "[N]");
    expect("clean_correct", c.clean_correct.size(), rn, "[R, N]");
    expect("adversarial_correct", c.adversarial_correct.size(), rn, "[R, N]");
    expect("linf", c.linf.size(), n, "[N]");
    expect("l2", c.l2.size(), n, "[N]");
    expect("l0", c.l0.size(), n, "[N]");
    expect("final_loss", c.final_loss.size(), n, "[N]");
    expect("gradient_evaluations", c.gradient_evaluations.size(), n, "[N]");
    if (!c.clean_prediction.empty()) expect("clean_prediction", c.clean_prediction.size(), rn, "[R, N]");
    if (!c.adversarial_prediction.empty())
      expect("adversarial_prediction", c.adversarial_prediction.size(), rn, "[R, N]");
    if (c.has_adversarial()) {
      std::size_t row = 1;
      for (auto d : c.adversarial_shape) {
        if (d < 1)
          fail(fmt::format("{}: adversarial example shape [{}] has a dimension < 1", where,
                           fmt::join(c.adversarial_shape, ", ")));
        row *= static_cast<std::size_t>(d);
      }
      const auto m = c.adversarial_index.size();
      if (!(c.adversarial.empty() && !c.adversarial_file.empty()) && c.adversarial.size() != m * row)
        fail(fmt::format("{}: adversarial has {} values, expected {} ({} rows of shape [{}])", where,
                         c.adversarial.size(), m * row, m, fmt::join(c.adversarial_shape, ", ")));
    } else if (!c.adversarial.empty() || !c.adversarial_index.empty()) {
      fail(fmt::format("{}: adversarial examples without their shape", where));
    }
    for (const auto& [key, value] : c.summary) {
      if (key.empty()) fail(fmt::format("{}: a summary entry has an empty name", where));
      if (kCellAttributes.count(key))
        fail(fmt::format("{}: summary entry '{}' clashes with a cell attribute", where, key));
      if (is_count_summary_entry(key) && !(std::isfinite(value) && value == std::round(value)))
        fail(fmt::format("{}: summary entry '{}' is {}, expected a count", where, key, value));
    }
  }
}

void write_contents(H5::H5File& h5, const ResultFile& file) {
  H5::Group root = h5.openGroup("/");
  put_string(root, "schema", kResultsSchema);
  put_int(root, "schema_version", kResultsSchemaVersion);
  for (const auto& [key, value] : file.root) {
    if (key == "schema" || key == "schema_version") continue;
    if (is_integer_root_attribute(key))
      put_int(root, key, *parse_int64(value));  // validate() checked it
    else
      put_string(root, key, value);
  }

  H5::Group models = h5.createGroup("/models");
  for (std::size_t i = 0; i < file.models.size(); ++i) {
    const ModelInfo& m = file.models[i];
    H5::Group g = models.createGroup(m.name);
    put_int(g, "order", static_cast<int64_t>(i));
    put_string(g, "name", m.name);
    put_string(g, "description", m.description);
    put_string(g, "provenance", m.provenance);
    put_string(g, "file_sha256", m.file_sha256);
    put_bool(g, "stochastic", m.stochastic);
    put_string(g, "prediction_rule", m.prediction_rule);
    put_string(g, "training_json", m.training_json);
    put_string(g, "paper_json", m.paper_json);
    put_number(g, "clean_accuracy", m.clean_accuracy);
    put_string(g, "flags", flags_to_json(m.flags));
  }

  H5::Group cells = h5.createGroup("/cells");
  for (std::size_t i = 0; i < file.cells.size(); ++i) {
    const CellResult& c = file.cells[i];
    H5::Group g = cells.createGroup(c.id);
    put_int(g, "order", static_cast<int64_t>(i));
    put_string(g, "id", c.id);
    put_string(g, "model", c.model);
    put_string(g, "attack", c.attack);
    put_string(g, "attack_kind", c.attack_kind);
    put_string(g, "norm", c.norm);
    put_number(g, "eps", c.eps);
    put_string(g, "eps_text", c.eps_text);
    put_bool(g, "targeted", c.targeted);
    put_string(g, "target_rule", c.target_rule);
    put_string(g, "source_model", c.source_model);
    put_string(g, "group", c.group);
    put_int(g, "cascade_position", c.cascade_position);
    put_string(g, "threat_model", c.threat_model);
    put_string(g, "hash", c.hash);
    put_string(g, "config_json", c.config_json);
    put_int(g, "repeats", c.repeats);
    put_int(g, "eot_samples", c.eot_samples);
    put_string(g, "flags", flags_to_json(c.flags));
    put_int(g, "unreliable", c.unreliable() ? 1 : 0);
    for (const auto& [key, value] : c.summary) {
      if (is_count_summary_entry(key))
        put_int(g, key, static_cast<int64_t>(value));
      else
        put_number(g, key, value);
    }

    const auto n = static_cast<hsize_t>(c.index.size()), r = static_cast<hsize_t>(c.repeats);
    h5::write_dataset(g, "index", c.index, H5::PredType::NATIVE_INT64, {n});
    h5::write_dataset(g, "label", c.label, H5::PredType::NATIVE_INT64, {n});
    if (c.targeted) h5::write_dataset(g, "target", c.target, H5::PredType::NATIVE_INT64, {n});
    h5::write_dataset(g, "attacked", c.attacked, H5::PredType::NATIVE_UINT8, {n});
    h5::write_dataset(g, "clean_correct", c.clean_correct, H5::PredType::NATIVE_UINT8, {r, n});
    h5::write_dataset(g, "adversarial_correct", c.adversarial_correct, H5::PredType::NATIVE_UINT8, {r, n});
    h5::write_dataset(g, "linf", c.linf, H5::PredType::NATIVE_FLOAT, {n});
    h5::write_dataset(g, "l2", c.l2, H5::PredType::NATIVE_FLOAT, {n});
    h5::write_dataset(g, "l0", c.l0, H5::PredType::NATIVE_FLOAT, {n});
    h5::write_dataset(g, "final_loss", c.final_loss, H5::PredType::NATIVE_FLOAT, {n});
    h5::write_dataset(g, "gradient_evaluations", c.gradient_evaluations, H5::PredType::NATIVE_INT64, {n});
    if (!c.clean_prediction.empty())
      h5::write_dataset(g, "clean_prediction", c.clean_prediction, H5::PredType::NATIVE_INT64, {r, n});
    if (!c.adversarial_prediction.empty())
      h5::write_dataset(g, "adversarial_prediction", c.adversarial_prediction, H5::PredType::NATIVE_INT64, {r, n});
    if (c.has_adversarial()) write_adversarial(g, c);
  }
}

// ---- reading ----

class Reader {
 public:
  Reader(std::string path, AdversarialExamples adversarial) : path_(std::move(path)), adversarial_(adversarial) {}

  [[noreturn]] void fail(const std::string& where, const std::string& why) const {
    throw Error(fmt::format("{}: {}{}", path_, where.empty() ? "" : where + ": ", why));
  }

  H5::Attribute attribute(const H5::H5Object& obj, const std::string& where, const std::string& key) const {
    if (!obj.attrExists(key)) fail(where, fmt::format("attribute '{}' is missing", key));
    return obj.openAttribute(key);
  }

  std::string string_attribute(const H5::H5Object& obj, const std::string& where, const std::string& key) const {
    H5::Attribute a = attribute(obj, where, key);
    if (a.getTypeClass() != H5T_STRING) fail(where, fmt::format("attribute '{}' is not a string", key));
    return read_string(a);
  }

  static std::string read_string(const H5::Attribute& a) {
    std::string s;
    a.read(a.getStrType(), s);
    while (!s.empty() && s.back() == '\0') s.pop_back();
    return s;
  }

  double number_attribute(const H5::H5Object& obj, const std::string& where, const std::string& key) const {
    H5::Attribute a = attribute(obj, where, key);
    const auto cls = a.getTypeClass();
    if (cls != H5T_INTEGER && cls != H5T_FLOAT) fail(where, fmt::format("attribute '{}' is not a number", key));
    double v = 0;
    a.read(H5::PredType::NATIVE_DOUBLE, &v);
    return v;
  }

  int64_t int_attribute(const H5::H5Object& obj, const std::string& where, const std::string& key) const {
    H5::Attribute a = attribute(obj, where, key);
    if (a.getTypeClass() != H5T_INTEGER) fail(where, fmt::format("attribute '{}' is not an integer", key));
    int64_t v = 0;
    a.read(H5::PredType::NATIVE_INT64, &v);
    return v;
  }

  bool bool_attribute(const H5::H5Object& obj, const std::string& where, const std::string& key) const {
    H5::Attribute a = attribute(obj, where, key);
    const auto cls = a.getTypeClass();
    if (cls == H5T_ENUM) {
      const H5::EnumType type = bool_type();
      int8_t v = 0;
      a.read(type, &v);
      return v != 0;
    }
    if (cls != H5T_INTEGER && cls != H5T_FLOAT) fail(where, fmt::format("attribute '{}' is not a boolean", key));
    double v = 0;
    a.read(H5::PredType::NATIVE_DOUBLE, &v);
    return v != 0;
  }

  std::vector<Flag> flags_attribute(const H5::H5Object& obj, const std::string& where) const {
    const std::string text = string_attribute(obj, where, "flags");
    std::vector<Flag> flags;
    try {
      const auto j = nlohmann::json::parse(text);
      if (!j.is_array()) fail(where, "attribute 'flags' is not a JSON array");
      for (const auto& f : j) {
        Flag flag;
        flag.check = f.at("check").get<int>();
        flag.name = f.at("name").get<std::string>();
        flag.failed = f.at("failed").get<bool>();
        flag.detail = f.at("detail").get<std::string>();
        flags.push_back(std::move(flag));
      }
    } catch (const nlohmann::json::exception& e) {
      fail(where, fmt::format("attribute 'flags' is not a list of checks ({})", e.what()));
    }
    return flags;
  }

  template <typename T>
  std::vector<T> dataset(const H5::Group& g, const std::string& where, const std::string& name,
                         const H5::PredType& type, H5T_class_t cls, const std::vector<hsize_t>& dims) const {
    if (!g.nameExists(name)) fail(where, fmt::format("dataset '{}' is missing", name));
    H5::DataSet ds = g.openDataSet(name);
    if (ds.getTypeClass() != cls)
      fail(where, fmt::format("dataset '{}' has the wrong type ({})", name,
                              cls == H5T_FLOAT ? "expected floats" : "expected integers"));
    const H5::DataSpace space = ds.getSpace();
    std::vector<hsize_t> have(static_cast<std::size_t>(space.getSimpleExtentNdims()));
    space.getSimpleExtentDims(have.data());
    if (have != dims)
      fail(where, fmt::format("dataset '{}' has shape [{}], expected [{}]", name, fmt::join(have, ", "),
                              fmt::join(dims, ", ")));
    hsize_t count = 1;
    for (auto d : dims) count = d != 0 && count > (hsize_t{1} << 62) / d ? (hsize_t{1} << 62) : count * d;
    // Bounded before allocating: deflate expands at most ~1032x, so a dataset
    // cannot hold more than that many times the bytes it stores (a damaged or
    // crafted file declaring a huge shape would otherwise allocate it).
    const hsize_t stored = H5Dget_storage_size(ds.getId());
    if (count > 0 && count / 1100 > stored / sizeof(T) + 1)
      fail(where, fmt::format("dataset '{}' declares {} values but stores {} bytes", name, count, stored));
    std::vector<T> v(count);
    if (count > 0) ds.read(v.data(), type);
    return v;
  }

  // Children of a group in the order of their "order" attribute.
  std::vector<std::string> ordered_children(const H5::H5File& h5, const std::string& group) const {
    if (!h5.nameExists(group)) fail("", fmt::format("group {} is missing", group));
    H5::Group g = h5.openGroup(group);
    std::vector<std::pair<int64_t, std::string>> children;
    for (hsize_t i = 0; i < g.getNumObjs(); ++i) {
      const std::string name = g.getObjnameByIdx(i);
      if (g.childObjType(name) != H5O_TYPE_GROUP) continue;
      H5::Group child = g.openGroup(name);
      children.emplace_back(int_attribute(child, group + "/" + name, "order"), name);
    }
    std::stable_sort(children.begin(), children.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<std::string> names;
    for (auto& [order, name] : children) names.push_back(std::move(name));
    return names;
  }

  ModelInfo model(const H5::H5File& h5, const std::string& name) const {
    const std::string where = "/models/" + name;
    H5::Group g = h5.openGroup(where);
    ModelInfo m;
    m.name = name;
    m.description = string_attribute(g, where, "description");
    m.provenance = string_attribute(g, where, "provenance");
    m.file_sha256 = string_attribute(g, where, "file_sha256");
    m.stochastic = bool_attribute(g, where, "stochastic");
    m.prediction_rule = string_attribute(g, where, "prediction_rule");
    m.training_json = string_attribute(g, where, "training_json");
    m.paper_json = string_attribute(g, where, "paper_json");
    m.clean_accuracy = number_attribute(g, where, "clean_accuracy");
    m.flags = flags_attribute(g, where);
    return m;
  }

  CellResult cell(const H5::H5File& h5, const std::string& id) const {
    const std::string where = "/cells/" + id;
    H5::Group g = h5.openGroup(where);
    CellResult c;
    c.id = id;
    c.model = string_attribute(g, where, "model");
    c.attack = string_attribute(g, where, "attack");
    c.attack_kind = string_attribute(g, where, "attack_kind");
    c.norm = string_attribute(g, where, "norm");
    c.eps = number_attribute(g, where, "eps");
    c.eps_text = string_attribute(g, where, "eps_text");
    c.targeted = bool_attribute(g, where, "targeted");
    c.target_rule = string_attribute(g, where, "target_rule");
    c.source_model = string_attribute(g, where, "source_model");
    c.group = string_attribute(g, where, "group");
    c.cascade_position = int_attribute(g, where, "cascade_position");
    c.threat_model = string_attribute(g, where, "threat_model");
    c.hash = string_attribute(g, where, "hash");
    c.config_json = string_attribute(g, where, "config_json");
    c.repeats = int_attribute(g, where, "repeats");
    c.eot_samples = int_attribute(g, where, "eot_samples");
    if (c.repeats < 1) fail(where, fmt::format("repeats is {}", c.repeats));
    c.flags = flags_attribute(g, where);
    for (int i = 0; i < g.getNumAttrs(); ++i) {
      H5::Attribute a = g.openAttribute(static_cast<unsigned>(i));
      const std::string key = a.getName();
      const auto cls = a.getTypeClass();
      if (kCellAttributes.count(key) || (cls != H5T_INTEGER && cls != H5T_FLOAT)) continue;
      double v = 0;
      a.read(H5::PredType::NATIVE_DOUBLE, &v);
      c.summary[key] = v;
    }

    // The shape of index gives N; every other dataset must agree.
    if (!g.nameExists("index")) fail(where, "dataset 'index' is missing");
    const H5::DataSpace index_space = g.openDataSet("index").getSpace();
    if (index_space.getSimpleExtentNdims() != 1) fail(where, "dataset 'index' is not one-dimensional");
    hsize_t n = 0;
    index_space.getSimpleExtentDims(&n);
    const auto r = static_cast<hsize_t>(c.repeats);
    const auto i64 = H5::PredType::NATIVE_INT64, u8 = H5::PredType::NATIVE_UINT8, f32 = H5::PredType::NATIVE_FLOAT;
    c.index = dataset<int64_t>(g, where, "index", i64, H5T_INTEGER, {n});
    c.label = dataset<int64_t>(g, where, "label", i64, H5T_INTEGER, {n});
    if (c.targeted) c.target = dataset<int64_t>(g, where, "target", i64, H5T_INTEGER, {n});
    c.attacked = dataset<uint8_t>(g, where, "attacked", u8, H5T_INTEGER, {n});
    c.clean_correct = dataset<uint8_t>(g, where, "clean_correct", u8, H5T_INTEGER, {r, n});
    c.adversarial_correct = dataset<uint8_t>(g, where, "adversarial_correct", u8, H5T_INTEGER, {r, n});
    c.linf = dataset<float>(g, where, "linf", f32, H5T_FLOAT, {n});
    c.l2 = dataset<float>(g, where, "l2", f32, H5T_FLOAT, {n});
    c.l0 = dataset<float>(g, where, "l0", f32, H5T_FLOAT, {n});
    c.final_loss = dataset<float>(g, where, "final_loss", f32, H5T_FLOAT, {n});
    c.gradient_evaluations = dataset<int64_t>(g, where, "gradient_evaluations", i64, H5T_INTEGER, {n});
    // Version 2 (absent in version 1, and in files merged from version-1 shards).
    if (g.nameExists("clean_prediction"))
      c.clean_prediction = dataset<int64_t>(g, where, "clean_prediction", i64, H5T_INTEGER, {r, n});
    if (g.nameExists("adversarial_prediction"))
      c.adversarial_prediction = dataset<int64_t>(g, where, "adversarial_prediction", i64, H5T_INTEGER, {r, n});
    if (adversarial_ != AdversarialExamples::kSkip && g.nameExists("adversarial")) {
      const H5::DataSet ds = g.openDataSet("adversarial");
      if (ds.getTypeClass() != H5T_FLOAT) fail(where, "dataset 'adversarial' has the wrong type (expected floats)");
      const H5::DataSpace space = ds.getSpace();
      std::vector<hsize_t> dims(static_cast<std::size_t>(space.getSimpleExtentNdims()));
      space.getSimpleExtentDims(dims.data());
      if (dims.size() < 2) fail(where, "dataset 'adversarial' has fewer than two dimensions");
      c.adversarial_shape.assign(dims.begin() + 1, dims.end());
      c.adversarial_index = dataset<int64_t>(g, where, "adversarial_index", i64, H5T_INTEGER, {dims[0]});
      if (adversarial_ == AdversarialExamples::kLoad)
        c.adversarial = dataset<float>(g, where, "adversarial", f32, H5T_FLOAT, dims);
      else
        c.adversarial_file = path_;
    }
    return c;
  }

  ResultFile read(const H5::H5File& h5) const {
    H5::Group root = h5.openGroup("/");
    const bool has_schema = root.attrExists("schema");
    const std::string schema = has_schema ? string_attribute(root, "", "schema") : "";
    if (schema == kAttackRecordsSchema || (!has_schema && (root.attrExists("attack") || h5.nameExists("white-box"))))
      fail("", fmt::format("per-attack records written by `imbench attack --out` of an earlier imbench, not an {} "
                           "file; re-create it by running the attack again (`imbench attack --out` now writes {} "
                           "files)",
                           kResultsSchema, kResultsSchema));
    if (!has_schema) fail("", "HDF5 file without a 'schema' attribute, not an imbench results file");
    if (schema != kResultsSchema)
      fail("", fmt::format("schema '{}' is not an imbench results file (schema '{}')", schema, kResultsSchema));
    // Version 1: a float64 schema_version, string root attributes, float64
    // counts, no predictions; version 2: int64 (docs/results-h5.md).
    const double version = number_attribute(root, "", "schema_version");
    if (version != 1 && version != kResultsSchemaVersion)
      fail("", fmt::format("{} schema_version {} is not supported by this build (it reads versions 1 to {})",
                           kResultsSchema, version, kResultsSchemaVersion));

    ResultFile file;
    file.read_version = static_cast<int64_t>(version);
    for (int i = 0; i < root.getNumAttrs(); ++i) {
      H5::Attribute a = root.openAttribute(static_cast<unsigned>(i));
      if (a.getTypeClass() == H5T_STRING) {
        file.root[a.getName()] = read_string(a);
      } else if (a.getTypeClass() == H5T_INTEGER) {
        int64_t v = 0;
        a.read(H5::PredType::NATIVE_INT64, &v);
        file.root[a.getName()] = std::to_string(v);
      }
    }
    file.root["schema"] = kResultsSchema;
    file.root["schema_version"] = std::to_string(kResultsSchemaVersion);
    for (const auto& name : ordered_children(h5, "/models")) file.models.push_back(model(h5, name));
    for (const auto& id : ordered_children(h5, "/cells")) file.cells.push_back(cell(h5, id));
    return file;
  }

 private:
  std::string path_;
  AdversarialExamples adversarial_ = AdversarialExamples::kLoad;
};

}  // namespace
}  // namespace results_h5

namespace {

// Bob Jenkins' lookup3 hash (hashlittle), the checksum of HDF5's metadata.
std::uint32_t lookup3(const unsigned char* k, std::size_t length) {
  auto rot = [](std::uint32_t x, int r) { return (x << r) | (x >> (32 - r)); };
  auto word = [](const unsigned char* p) {
    return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 | std::uint32_t{p[3]} << 24;
  };
  std::uint32_t a, b, c;
  a = b = c = 0xdeadbeefu + static_cast<std::uint32_t>(length);
  while (length > 12) {
    a += word(k), b += word(k + 4), c += word(k + 8);
    a -= c, a ^= rot(c, 4), c += b;
    b -= a, b ^= rot(a, 6), a += c;
    c -= b, c ^= rot(b, 8), b += a;
    a -= c, a ^= rot(c, 16), c += b;
    b -= a, b ^= rot(a, 19), a += c;
    c -= b, c ^= rot(b, 4), b += a;
    length -= 12, k += 12;
  }
  if (length == 0) return c;
  unsigned char tail[12] = {};
  std::copy(k, k + length, tail);
  a += word(tail), b += word(tail + 4), c += word(tail + 8);
  c ^= b, c -= rot(b, 14);
  a ^= c, a -= rot(c, 11);
  b ^= a, b -= rot(a, 25);
  c ^= b, c -= rot(b, 16);
  a ^= c, a -= rot(c, 4);
  b ^= a, b -= rot(a, 14);
  c ^= b, c -= rot(b, 24);
  return c;
}

// H5Fget_file_image of a file still open for writing clears the superblock's
// "open for write" flag in the copy but keeps the checksum computed with the
// flag set, so HDF5 and h5py refuse the image ("incorrect metadata checksum").
// The superblock (version 2 or 3, at offset 0) gets its checksum recomputed.
void fix_superblock_checksum(std::string& image, const std::string& path) {
  auto* p = reinterpret_cast<unsigned char*>(image.data());
  if (image.size() < 12 || image.compare(0, 8, "\x89HDF\r\n\x1a\n", 8) != 0 || (p[8] != 2 && p[8] != 3))
    throw Error(fmt::format("{}: write failed: unexpected HDF5 superblock in the file image", path));
  const std::size_t body = 12 + 4 * std::size_t{p[9]};  // four addresses of sizeof_addr bytes
  if (image.size() < body + 4) throw Error(fmt::format("{}: write failed: short HDF5 file image", path));
  const std::uint32_t sum = lookup3(p, body);
  for (int i = 0; i < 4; ++i) p[body + i] = static_cast<unsigned char>(sum >> (8 * i));
}

}  // namespace

void write_results(const std::string& path, const ResultFile& file) {
  results_h5::validate(path, file);
  // The file is built in memory (HDF5's core driver, no backing store) and
  // written by imbench::write_file_atomically: HDF5 never sees a failing disk,
  // whose errors it reports from destructors and whose half-closed files
  // crash a second close. The price: a save holds the file's bytes in memory.
  H5::Exception::dontPrint();
  std::string image;
  try {
    H5::FileAccPropList fapl;
    if (H5Pset_fapl_core(fapl.getId(), std::size_t{1} << 20, false) < 0)
      throw Error(fmt::format("{}: write failed: cannot set up an in-memory HDF5 file", path));
    // The HDF5 1.8 file format (readable by HDF5 1.8 and later, h5py too):
    // its superblock and object headers carry checksums, so a damaged file is
    // refused by HDF5 before its decoders (which trust what they read in
    // libhdf5 1.10.8: fuzz/corpus/fuzz_results/crash-*) see the damage.
    if (H5Pset_libver_bounds(fapl.getId(), H5F_LIBVER_V18, H5F_LIBVER_V18) < 0)
      throw Error(fmt::format("{}: write failed: cannot select the HDF5 1.8 file format", path));
    // A name of its own: never the same HDF5 file as `path`, which a resumed
    // run may have open to copy adversarial examples from.
    H5::H5File h5(path + ".image", H5F_ACC_TRUNC, H5::FileCreatPropList::DEFAULT, fapl);
    results_h5::write_contents(h5, file);  // every group and dataset is closed when this returns
    h5.flush(H5F_SCOPE_GLOBAL);
    const ssize_t size = H5Fget_file_image(h5.getId(), nullptr, 0);
    if (size <= 0) throw Error(fmt::format("{}: write failed: cannot take the HDF5 file image", path));
    image.resize(static_cast<std::size_t>(size));
    if (H5Fget_file_image(h5.getId(), image.data(), image.size()) != size)
      throw Error(fmt::format("{}: write failed: cannot take the HDF5 file image", path));
    h5.close();
  } catch (const H5::Exception& e) {
    throw Error(fmt::format("{}: HDF5 write failed: {}", path, h5_error_detail(e)));
  }
  fix_superblock_checksum(image, path);
  write_file_atomically(path, image);
}

bool is_attack_records_file(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return false;
  H5::Exception::dontPrint();
  try {
    if (!H5::H5File::isHdf5(path)) return false;
    h5guard::check_file(path);
    const H5::H5File h5(path, H5F_ACC_RDONLY);
    const H5::Group root = h5.openGroup("/");
    if (root.attrExists("schema")) {
      std::string schema;
      const H5::Attribute a = root.openAttribute("schema");
      a.read(a.getStrType(), schema);
      while (!schema.empty() && schema.back() == '\0') schema.pop_back();
      return schema == results_h5::kAttackRecordsSchema;
    }
    return root.attrExists("attack") || h5.nameExists("white-box");
  } catch (const H5::Exception&) {
    return false;
  }
}

ResultFile read_results(const std::string& path, AdversarialExamples adversarial) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(fmt::format("{}: no such file", path));
  if (fs::is_directory(path, ec)) throw Error(fmt::format("{}: is a folder, not a results file", path));
  H5::Exception::dontPrint();
  bool is_hdf5 = false;
  try {
    is_hdf5 = H5::H5File::isHdf5(path);
  } catch (const H5::Exception& e) {
    throw Error(fmt::format("{}: cannot read: {}", path, h5_error_detail(e)));
  }
  if (!is_hdf5) throw Error(fmt::format("{}: not an HDF5 file", path));
  h5guard::check_file(path);
  const results_h5::Reader reader(path, adversarial);
  try {
    const H5::H5File h5(path, H5F_ACC_RDONLY);
    return reader.read(h5);
  } catch (const H5::Exception& e) {
    throw Error(
        fmt::format("{}: cannot read the HDF5 file (truncated or damaged?): {}", path, h5_error_detail(e)));
  }
}

}  // namespace imbench::reports
