// SPDX-License-Identifier: Apache-2.0
// Internal to parse_policy: what makes a name, a path or a key in a policy file acceptable.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace pagi_exec::detail {

/// Where a name from a policy file is used.
enum class NameRule : unsigned char {
  grant,    ///< an allow entry: a tool name, a program, or "*"
  refusal,  ///< a deny or always_refused entry: names a program, never "*"
};

/// Why `name` cannot be an entry of a list with `rule`, or empty: not empty, no control
/// characters, no surrounding spaces; refusals must name a program and not be "*".
[[nodiscard]] std::string why_not_name(std::string_view name, NameRule rule);

/// How to write a good entry for `rule`, for the "; <fix>" part of a message.
[[nodiscard]] std::string name_fix(NameRule rule);

/// why_not_path_component, and no surrounding spaces.
[[nodiscard]] std::string why_not_twin_id(std::string_view id);

/// Why `name` cannot name a [tools.<name>] entry: a name as for a grant, not "*", no '/'.
[[nodiscard]] std::string why_not_tool_key(std::string_view name);

/// Why `path` cannot be a tool's program: it must be absolute, name a program, no control characters.
[[nodiscard]] std::string why_not_program_path(std::string_view path);

/// The entry of `keys` nearest to `key` (at most 2 edits away, or a prefix), or empty: for "did you mean".
[[nodiscard]] std::string_view closest(std::string_view key, std::span<const std::string_view> keys);

/// The first 12 hex digits of the FNV-1a 64 hash of `text`.
[[nodiscard]] std::string revision_of(std::string_view text);

}  // namespace pagi_exec::detail
