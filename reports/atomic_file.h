#pragma once
/// The one way reports/ replaces a file (results, reports, robustness
/// curves): a temporary file beside the target, flushed and renamed over it.
/// Torch-free.
#include <functional>
#include <string>

namespace imbench::reports {

/// Replaces `path` atomically: `write(tmp)` fills a temporary file beside it,
/// which is flushed to disk and renamed over `path`. Creates missing parent
/// folders. On any failure the temporary file is removed, `path` is left as it
/// was, and an imbench::Error naming `path` is thrown (HDF5 and filesystem
/// errors included); errors `write` throws as imbench::Error pass unchanged.
void replace_file_atomically(const std::string& path, const std::function<void(const std::string& tmp)>& write);

/// Writes `text` to `path` through replace_file_atomically. UsageError when
/// `path` is a folder.
void write_text_atomically(const std::string& path, const std::string& text);

}  // namespace imbench::reports
