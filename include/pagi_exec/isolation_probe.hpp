// SPDX-License-Identifier: Apache-2.0
// Probing which isolation works on this machine: runs a trivial command, so it is compiled.
#pragma once

#include <string>

#include "pagi_exec/error.hpp"
#include "pagi_exec/sandbox.hpp"

namespace pagi_exec {

/// Runs a trivial command (/bin/true) under the sandbox's isolation once, to learn whether it
/// works on this machine (bwrap: the CLI; native: namespaces, cgroups, seccomp). Errc::sandbox_setup
/// with the tool's own complaint when it does not. Meant for start-up, not for every request.
[[nodiscard]] Result<void> check_isolation(const Sandbox& sandbox);

/// The isolation choose_isolation() settled on, and why, in words for a log line.
struct IsolationChoice {
  Sandbox sandbox;     ///< the spec given, with the chosen isolation
  std::string reason;  ///< "native works here" or "native does not work here (...); bwrap works here"
};

/// The strongest isolation that works on this machine: probes native, then bwrap (with
/// check_isolation), and settles on cwd, which always works, when neither does. The spec's own
/// isolation is ignored. Errc::invalid_config when `spec` is not valid for the mode probed last.
/// Spawns processes: meant for start-up.
[[nodiscard]] Result<IsolationChoice> choose_isolation(const SandboxSpec& spec);

}  // namespace pagi_exec
