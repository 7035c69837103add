// SPDX-License-Identifier: Apache-2.0
// From an allowed Request to a LaunchPlan: argv, environment, isolation wrapper. Plan first,
// execute later (bubblewrap's split): nothing here starts a process.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "pagi_exec/error.hpp"
#include "pagi_exec/request.hpp"
#include "pagi_exec/sandbox.hpp"
#include "pagi_exec/spawner.hpp"
#include "pagi_exec/tool_catalog.hpp"

namespace pagi_exec::detail {

/// The PATH every command gets, and that program names are resolved in.
inline constexpr const char* sandbox_path = "/usr/local/bin:/usr/bin:/bin";
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

/// The command's argv before resolution: the shell bridge becomes /bin/sh -c args[0] (further
/// args become $1...), a catalog program gets its fixed arguments, any other tool is argv[0].
/// Errc::invalid_request for command_exec without a command line.
[[nodiscard]] Result<std::vector<std::string>> command_argv(const ToolEntry* entry, const Request& request);

/// The launch plan for `argv` (argv[0] already resolved) under the sandbox's isolation, with
/// these limits (the sandbox's, adjusted for this twin and caller), with or without network.
[[nodiscard]] LaunchPlan make_launch_plan(const Sandbox& sandbox, std::vector<std::string> argv,
                                          const Placement& place, const Limits& limits, bool network = false);

}  // namespace pagi_exec::detail
