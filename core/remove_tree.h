#pragma once
// Removes a folder and everything under it, like std::filesystem::remove_all,
// without calling it: PyTorch's wheels (the CUDA build's LibTorch) export their
// own copy of std::filesystem::remove_all from libtorch.so, and a binary that
// links it jumps to a null address there (seen with torch 2.11.0+cu130 on the
// GPU machine; docs/gpu.md). Symbolic links are removed, never followed.
#include <string>
#include <system_error>

namespace imbench {

/// Removes `path` and its contents; a missing path is not an error. Returns
/// false and sets `ec` on the first failure (what could be removed is gone).
bool remove_tree(const std::string& path, std::error_code& ec);
/// As above, throwing imbench::Error naming the path on failure.
void remove_tree(const std::string& path);

}  // namespace imbench
