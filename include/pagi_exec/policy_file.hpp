// SPDX-License-Identifier: Apache-2.0
// Policy files: a TOML file that says which twin may run what, with limits, and which tools exist.
// Header-only on toml++, so it is not in the umbrella pagi_exec.hpp: include it where a policy file
// is read, and link toml++ (`pkg-config --libs tomlplusplus`: Debian's is a compiled library).
#pragma once

#include <cstddef>
#include <filesystem>
#include <string_view>

#include "pagi_exec/error.hpp"
#include "pagi_exec/policy.hpp"

namespace pagi_exec {

/// Largest policy file load_policy_file reads.
inline constexpr std::size_t max_policy_file_bytes = std::size_t{1} << 20;

/// Parses the TOML text of a policy file (format: docs/policy.md, example: examples/policy.toml).
/// `source_name` names the text in messages (usually its path). Strict: unknown keys, wrong types,
/// duplicate keys, empty or unsafe names, "*" in a refusal list, relative program paths and
/// non-positive limits are all refused, so that a typo never silently widens or narrows what a
/// twin may do. The policy's revision is the first 12 hex digits of the text's FNV-1a 64 hash.
/// Errc::invalid_config with "<source>:<line>:<column>: <what is wrong>; <how to fix it>".
/// Never throws (except std::bad_alloc). Thread-safe.
[[nodiscard]] inline Result<PolicyFile> parse_policy(std::string_view text, std::string_view source_name);

/// Reads `path` (at most max_policy_file_bytes) and parses it with parse_policy.
/// Errc::invalid_config when it cannot be read (with errno) or is not a valid policy file.
/// Never throws (except std::bad_alloc). Thread-safe.
[[nodiscard]] inline Result<PolicyFile> load_policy_file(const std::filesystem::path& path);

}  // namespace pagi_exec

#include "pagi_exec/detail/policy_file_reader.hpp"
