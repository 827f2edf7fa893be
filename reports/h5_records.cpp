#include "reports/h5_records.h"

#include <H5Cpp.h>
#include <fmt/format.h>

#include "core/errors.h"
#include "reports/atomic_file.h"
#include "reports/h5_util.h"

namespace imbench::reports {
namespace {

void string_attribute(H5::H5Object& obj, const std::string& key, const std::string& value) {
  H5::StrType type(H5::PredType::C_S1, std::max<std::size_t>(1, value.size()));
  H5::Attribute a = obj.createAttribute(key, type, H5::DataSpace(H5S_SCALAR));
  a.write(type, value.empty() ? std::string(" ") : value);
}

void number_attribute(H5::H5Object& obj, const std::string& key, double value) {
  H5::Attribute a = obj.createAttribute(key, H5::PredType::NATIVE_DOUBLE, H5::DataSpace(H5S_SCALAR));
  a.write(H5::PredType::NATIVE_DOUBLE, &value);
}


}  // namespace

void write_attack_records(const std::string& path, const std::map<std::string, std::string>& root_attributes,
                          const std::vector<AttackRecords>& groups) {
  replace_file_atomically(path, [&](const std::string& tmp) {
    H5::Exception::dontPrint();
    H5::H5File file(tmp, H5F_ACC_TRUNC);
    H5::Group root = file.openGroup("/");
    string_attribute(root, "schema", "imbench-attack-records");
    number_attribute(root, "schema_version", 1);
    for (const auto& [k, v] : root_attributes) string_attribute(root, k, v);
    for (const auto& r : groups) {
      const auto n = static_cast<hsize_t>(r.index.size()), reps = static_cast<hsize_t>(r.repeats);
      H5::Group g = file.createGroup("/" + r.name);
      h5::write_dataset(g, "index", r.index, H5::PredType::NATIVE_INT64, {n});
      h5::write_dataset(g, "label", r.label, H5::PredType::NATIVE_INT64, {n});
      if (!r.target.empty()) h5::write_dataset(g, "target", r.target, H5::PredType::NATIVE_INT64, {n});
      h5::write_dataset(g, "clean_correct", r.clean_correct, H5::PredType::NATIVE_UINT8, {reps, n});
      h5::write_dataset(g, "adversarial_correct", r.adversarial_correct, H5::PredType::NATIVE_UINT8, {reps, n});
      h5::write_dataset(g, "linf", r.linf, H5::PredType::NATIVE_FLOAT, {n});
      h5::write_dataset(g, "l2", r.l2, H5::PredType::NATIVE_FLOAT, {n});
      h5::write_dataset(g, "l0", r.l0, H5::PredType::NATIVE_FLOAT, {n});
      h5::write_dataset(g, "final_loss", r.final_loss, H5::PredType::NATIVE_FLOAT, {n});
      h5::write_dataset(g, "gradient_evaluations", r.gradient_evaluations, H5::PredType::NATIVE_INT64, {n});
      for (const auto& [k, v] : r.attributes) string_attribute(g, k, v);
      for (const auto& [k, v] : r.summary) number_attribute(g, k, v);
    }
    file.close();
  });
}

}  // namespace imbench::reports
