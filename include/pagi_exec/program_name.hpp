// SPDX-License-Identifier: Apache-2.0
// How a tool string names a program: the rule the always-refused list is matched with.
#pragma once

#include <string_view>

namespace pagi_exec {

/// The program a tool string names, for matching: the last non-empty path component.
/// `rm`, `/bin/rm`, `./rm`, `../../bin/rm` and `//bin///rm/` all name `rm`. Case-sensitive, as
/// Linux file names are. Returns an empty view for "", "/" or "///". Thread-safe, allocation-free.
[[nodiscard]] constexpr std::string_view program_name(std::string_view tool) noexcept {
  while (!tool.empty() && tool.back() == '/') tool.remove_suffix(1);
  const auto slash = tool.rfind('/');
  if (slash != std::string_view::npos) tool.remove_prefix(slash + 1);
  return tool;
}

}  // namespace pagi_exec
