#pragma once
/// Error types and name lookup shared by all imbench libraries.
///
/// imbench maps exceptions to exit codes in one place (cli/main.cpp):
/// `Error` -> 1 (runtime failure: bad file, NaN, missing data),
/// `UsageError` -> 2 (bad option, unknown name, contradictory flags).
/// Messages are one line and name the file or option at fault.
#include <stdexcept>
#include <string>
#include <vector>

namespace imbench {

/// A runtime failure: missing or corrupt file, numerical failure. Exit code 1.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A usage error: unknown name, invalid option value, contradictory options. Exit code 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Levenshtein distance between two names (for "did you mean").
std::size_t edit_distance(const std::string& a, const std::string& b);

/// "unknown <what> 'name' (did you mean 'x'?); known: a, b, c" as a UsageError.
[[noreturn]] void throw_unknown_name(const std::string& what, const std::string& name,
                                     const std::vector<std::string>& known);

/// The closest known name within a small edit distance, or "" if none is close.
std::string closest_name(const std::string& name, const std::vector<std::string>& known);

}  // namespace imbench
