// SPDX-License-Identifier: Apache-2.0
// ToolCatalog: what a logical tool name means — the shell bridge, a built-in, or a program.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace pagi_exec {

/// The logical tool that hands args[0] to /bin/sh -c.
inline constexpr std::string_view shell_bridge_tool = "command_exec";

enum class ToolKind : std::uint8_t {
  shell_bridge,  ///< args[0] runs through /bin/sh -c (command_exec)
  file_write,    ///< built in: args[0] a workspace-relative path, args[1] the content
  program,       ///< a real program with fixed leading arguments
  unavailable,   ///< named by the policy but not provided here: answers 127 with `note`
};

struct ToolEntry {
  ToolKind kind = ToolKind::program;
  std::string program{};          ///< for ToolKind::program: absolute path or PATH name
  std::vector<std::string> args{};  ///< fixed leading arguments, before the request's
  std::string note{};             ///< for ToolKind::unavailable: why, and how to provide it
  bool operator==(const ToolEntry&) const = default;
};

/// Logical tool names. A tool that is not in the catalog is run as a program named by itself.
struct ToolCatalog {
  std::map<std::string, ToolEntry, std::less<>> tools{};

  /// command_exec (shell bridge), file_write (built in), vector_query (no program here).
  [[nodiscard]] static ToolCatalog seed_default() {
    return ToolCatalog{.tools = {
        {std::string(shell_bridge_tool), ToolEntry{.kind = ToolKind::shell_bridge}},
        {"file_write", ToolEntry{.kind = ToolKind::file_write}},
        {"vector_query",
         ToolEntry{.kind = ToolKind::unavailable,
                   .note = "vector_query has no program on this server; map it to one in a tool "
                           "catalog to make it runnable"}},
    }};
  }

  /// The entry for `tool`, or nullptr when `tool` names a program directly.
  [[nodiscard]] const ToolEntry* find(std::string_view tool) const {
    const auto it = tools.find(tool);
    return it == tools.end() ? nullptr : &it->second;
  }
  bool operator==(const ToolCatalog&) const = default;
};

}  // namespace pagi_exec
