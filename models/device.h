#pragma once
#include <torch/torch.h>

#include <string>

namespace imbench::models {

/// "cpu", "cuda" or "cuda:N". Asking for CUDA where this LibTorch has none
/// (Debian's libtorch-dev is CPU only) or for a GPU index that does not
/// exist is a UsageError that says so.
torch::Device parse_device(const std::string& name);
/// "cpu (2 threads)" or "cuda:0 (NVIDIA H100 ...)" for reports.
std::string device_description(const torch::Device& device);
/// Seeds torch's global CPU and CUDA generators.
void seed_everything(uint64_t seed);

}  // namespace imbench::models
