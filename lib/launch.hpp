// SPDX-License-Identifier: Apache-2.0
// From an allowed Request to a LaunchPlan: argv, environment, isolation wrapper. Plan first,
// execute later (bubblewrap's split): nothing here starts a process.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "pagi_exec/command.hpp"
#include "pagi_exec/detail/program_lookup.hpp"
#include "pagi_exec/error.hpp"
#include "pagi_exec/request.hpp"
#include "pagi_exec/sandbox.hpp"
#include "pagi_exec/spawner.hpp"
#include "pagi_exec/tool_catalog.hpp"

namespace pagi_exec::detail {

/// Inside a bwrap sandbox: the working directory (a size-capped tmpfs) and the workspace
/// (read-only), as in native.
inline constexpr const char* bwrap_work_dir = "/work";
inline constexpr const char* bwrap_workspace = "/workspace";
/// Inside a native sandbox: the working directory (a size-capped tmpfs) and the workspace.
inline constexpr const char* native_work_dir = "/work";
inline constexpr const char* native_workspace = "/workspace";

/// Where one execution lives on the host.
struct Placement {
  std::string execution_id;
  std::string twin_id;
  std::filesystem::path workspace;      ///< SANDBOX_DIR/<twin>
  std::filesystem::path execution_dir;  ///< cwd: SANDBOX_DIR/<twin>/<execution_id>; unused by native and bwrap
};

/// The launch plan for `command` (a program or the shell bridge) under the sandbox's isolation,
/// with these limits (the sandbox's, adjusted for this twin and caller) and the network `decision`
/// grants. The command's argv is copied unchanged to the end of the plan's argv: the judged argv runs.
[[nodiscard]] LaunchPlan make_launch_plan(const Sandbox& sandbox, const Command& command, const Placement& place,
                                          const Limits& limits, const Decision& decision);

/// The same for a fixed argv the server itself runs (the start-up probe), never a request's.
[[nodiscard]] LaunchPlan make_probe_plan(const Sandbox& sandbox, std::vector<std::string> argv, const Placement& place,
                                         const Limits& limits);

}  // namespace pagi_exec::detail
