#pragma once
/// The classification half of the paper's Table 1, rendered from a zoo
/// manifest (harness/zoo.h): the paper's MNIST test error and CIFAR-10
/// accuracy beside imbench's (mean +- std over test passes, mean-field,
/// seeds), with epochs, training time and images/s. Torch-free.
#include <nlohmann/json.hpp>

#include <string>

namespace imbench::reports {

/// Markdown. `manifest_path` and `command` are printed as the report's source.
std::string render_zoo_report(const nlohmann::json& manifest, const std::string& manifest_path,
                              const std::string& command);

}  // namespace imbench::reports
