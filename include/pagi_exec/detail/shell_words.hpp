// SPDX-License-Identifier: Apache-2.0
// Internal to scan_shell: one shell word, how a note shows it, and what makes it an assignment.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace pagi_exec::detail {

/// One shell word as the scanner read it.
struct ShellWord {
  std::string text;      ///< value after quote removal; for expansions, their source text
  std::string raw;       ///< as written
  bool quoted = false;   ///< held quotes or backslashes: never a reserved word
  bool expands = false;  ///< holds a $-expansion or command substitution: value known only at run time
  bool globs = false;    ///< holds an unquoted * ? [...] or {...}: may become another name
};

/// True for a character of a shell NAME (XCU 3.235); digits only after the first.
[[nodiscard]] constexpr bool is_name_char(char c, bool first) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!first && c >= '0' && c <= '9');
}

/// `raw` made printable and short for a note: control characters escaped, at most 40 bytes.
[[nodiscard]] inline std::string snippet(std::string_view raw) {
  constexpr std::size_t max_snippet = 40;
  std::string s;
  for (const char c : raw) {
    if (s.size() >= max_snippet) {
      // Do not cut a UTF-8 sequence in half: drop continuation bytes, then their lead byte.
      while (!s.empty() && (static_cast<unsigned char>(s.back()) & 0xC0U) == 0x80U) s.pop_back();
      if (!s.empty() && static_cast<unsigned char>(s.back()) >= 0xC0U) s.pop_back();
      return s + "...";
    }
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') s += "\\n";
    else if (u < 0x20U || u == 0x7fU) s += '?';
    else s += c;
  }
  return s;
}

/// True for `NAME=...`, `NAME+=...` and `NAME[i]=...` with an unquoted NAME (XCU 2.9.1).
[[nodiscard]] inline bool is_assignment(std::string_view raw) noexcept {
  std::size_t i = 0;
  if (raw.empty() || !is_name_char(raw[0], true)) return false;
  while (i < raw.size() && is_name_char(raw[i], false)) ++i;
  if (i < raw.size() && raw[i] == '[') {  // bash a[1]=x
    const auto close = raw.find(']', i);
    if (close == std::string_view::npos) return false;
    i = close + 1;
  }
  if (i < raw.size() && raw[i] == '+') ++i;  // bash a+=x
  return i < raw.size() && raw[i] == '=';
}

}  // namespace pagi_exec::detail
