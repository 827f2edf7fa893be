#pragma once
/// The one way imbench replaces a file (results, checkpoints, training state,
/// reports, curves, CSV): a temporary file beside the target, written and
/// flushed with checked POSIX calls, then renamed over it. Torch-free and
/// HDF5-free: HDF5 writers build their file in memory first
/// (reports/results.cpp), so a failing disk never reaches the HDF5 library.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace imbench {

/// Replaces `path` with `bytes`: writes `<path>.tmp-<pid>`, fsyncs it and
/// renames it over `path`, creating missing parent folders. Every call is
/// checked; on failure the temporary file is removed, `path` is left
/// byte-identical and an imbench::Error of one line is thrown:
/// "PATH: write failed: disk full" (ENOSPC, EDQUOT) or "PATH: write failed:
/// <errno text>" (a folder at `path`: "Is a directory"). After a replace, the
/// temporary files of `path` that killed processes left behind (their PID no
/// longer runs on this machine) are removed.
void write_file_atomically(const std::string& path, std::string_view bytes);

/// Several files that belong together (a report and its curves): every
/// temporary file is written and flushed before the first rename, so a full
/// disk leaves all of them as they were. Only a rename failing after another
/// succeeded (no space is needed for a rename) can leave some replaced.
void write_files_atomically(const std::vector<std::pair<std::string, std::string_view>>& files);

}  // namespace imbench
