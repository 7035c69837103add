// SPDX-License-Identifier: Apache-2.0
// Internal to parse_policy: what makes a name, a path or a key in a policy file acceptable; typo
// suggestions; revisions.
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pagi_exec/paths.hpp"
#include "pagi_exec/policy.hpp"
#include "pagi_exec/program_name.hpp"

namespace pagi_exec::detail {
namespace names {

inline bool has_control(std::string_view s) noexcept {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20U || u == 0x7fU;
  });
}

inline bool has_surrounding_space(std::string_view s) noexcept {
  return !s.empty() && (s.front() == ' ' || s.back() == ' ');
}

// Levenshtein distance, for short keys only.
inline std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  std::iota(row.begin(), row.end(), std::size_t{0});
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0U : 1U)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace names

/// Where a name from a policy file is used.
enum class NameRule : unsigned char {
  grant,    ///< an allow entry: a tool name, a program, or "*"
  refusal,  ///< a deny or always_refused entry: names a program, never "*"
};

/// Why `name` cannot be an entry of a list with `rule`, or empty: not empty, no control
/// characters, no surrounding spaces; refusals must name a program and not be "*".
[[nodiscard]] inline std::string why_not_name(std::string_view name, NameRule rule) {
  if (name.empty()) return "is empty";
  if (names::has_control(name)) return "contains a control character";
  if (names::has_surrounding_space(name)) return "starts or ends with a space";
  if (rule == NameRule::refusal && name == grant_all) return "is '*', which is only meaningful in allow lists";
  if (rule == NameRule::refusal && program_name(name).empty()) return "names no program";
  return {};
}

/// How to write a good entry for `rule`, for the "; <fix>" part of a message.
[[nodiscard]] inline std::string name_fix(NameRule rule) {
  switch (rule) {
    case NameRule::grant:
      return "write a tool name such as \"file_write\", a program such as \"/usr/bin/git\", or \"*\" for every "
             "tool that is not refused";
    case NameRule::refusal:
      return "write a program name such as \"curl\" (it also refuses /usr/bin/curl and every other path to it)";
  }
  return {};
}

/// why_not_path_component, and no surrounding spaces.
[[nodiscard]] inline std::string why_not_twin_id(std::string_view id) {
  if (auto why = why_not_path_component(id); !why.empty()) return why;
  if (names::has_surrounding_space(id)) return "starts or ends with a space";
  return {};
}

/// Why `name` cannot name a [tools.<name>] entry: a name as for a grant, not "*", no '/'.
[[nodiscard]] inline std::string why_not_tool_key(std::string_view name) {
  if (auto why = why_not_name(name, NameRule::grant); !why.empty()) return why;
  if (name == grant_all) return "is '*', which is not a tool";
  if (name.find('/') != std::string_view::npos) return "contains '/': a tool name is a logical name, not a path";
  return {};
}

/// Why `path` cannot be a tool's program: it must be absolute, name a program, no control characters.
[[nodiscard]] inline std::string why_not_program_path(std::string_view path) {
  if (path.empty() || path.front() != '/') return "is not an absolute path";
  if (names::has_control(path)) return "contains a control character";
  if (program_name(path).empty()) return "names no program";
  return {};
}

/// The entry of `keys` nearest to `key` (at most 2 edits away, or a prefix), or empty: for "did you mean".
[[nodiscard]] inline std::string_view closest(std::string_view key, std::span<const std::string_view> keys) {
  std::string_view best;
  std::size_t best_distance = 3;  // suggest only within 2 edits
  for (const auto candidate : keys) {
    // timeout -> timeout_ms: a prefix of at least 3 characters counts as one edit.
    const bool prefix = key.size() >= 3 && (candidate.starts_with(key) || key.starts_with(candidate));
    const auto d = prefix ? 1 : names::edit_distance(key, candidate);
    if (d < best_distance) {
      best = candidate;
      best_distance = d;
    }
  }
  return best;
}

/// The first 12 hex digits of the FNV-1a 64 hash of `text`.
[[nodiscard]] inline std::string revision_of(std::string_view text) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a 64 offset basis
  for (const char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;  // FNV 64 prime
  }
  static constexpr char digits[] = "0123456789abcdef";
  std::string hex(16, '0');
  for (std::size_t i = 16; i-- > 0; hash >>= 4U) hex[i] = digits[hash & 0xfU];
  return hex.substr(0, 12);
}

}  // namespace pagi_exec::detail
