// The one precompiled header shared by all torch targets (see ARCHITECTURE.md).
#pragma once
#include <torch/torch.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>
