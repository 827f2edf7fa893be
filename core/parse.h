#pragma once
/// Small parsers shared by the CLI and the matrix reader. Torch-free.
#include <optional>
#include <string>

namespace imbench {

/// "0.3", "8/255" or "inf" as a number; nullopt for anything else.
std::optional<double> parse_eps_text(const std::string& text);

}  // namespace imbench
