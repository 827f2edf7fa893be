#include "models/device.h"

#include <fmt/format.h>

#include "core/errors.h"

namespace imbench::models {

torch::Device parse_device(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (name.rfind("cuda", 0) != 0) throw_unknown_name("device", name, {"cpu", "cuda", "cuda:N"});
  torch::Device device(torch::kCPU);
  try {
    device = torch::Device(name);
  } catch (const c10::Error&) {
    throw UsageError(fmt::format("invalid device '{}' (use cpu, cuda or cuda:N)", name));
  }
  if (!torch::cuda::is_available())
    throw UsageError(fmt::format("--device {}: this LibTorch build has no usable CUDA device (Debian's libtorch-dev is "
                                 "CPU only; see the README's GPU section for a CUDA build)",
                                 name));
  const auto count = static_cast<int64_t>(torch::cuda::device_count());
  if (device.has_index() && device.index() >= count)
    throw UsageError(fmt::format("--device {}: only {} CUDA device(s) present", name, count));
  if (!device.has_index()) device = torch::Device(torch::kCUDA, 0);
  return device;
}

std::string device_description(const torch::Device& device) {
  if (device.is_cpu()) return fmt::format("cpu ({} threads)", torch::get_num_threads());
  return fmt::format("{}", device.str());
}

void seed_everything(uint64_t seed) {
  torch::manual_seed(seed);
  if (torch::cuda::is_available()) torch::cuda::manual_seed_all(seed);
}

}  // namespace imbench::models
