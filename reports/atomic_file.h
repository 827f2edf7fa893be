#pragma once
/// How reports/ replaces a text file (reports, robustness curves, CSV): the
/// one atomic writer of core/atomic_file.h. Results files go through it too
/// (write_results builds the HDF5 file in memory first). Torch-free.
#include <string>

namespace imbench::reports {

/// Writes `text` to `path` through imbench::write_file_atomically: a
/// temporary file beside it, flushed and renamed over it. On failure the
/// temporary file is removed, `path` is left as it was, and an imbench::Error
/// of one line naming `path` is thrown. UsageError when `path` is a folder.
void write_text_atomically(const std::string& path, const std::string& text);

}  // namespace imbench::reports
