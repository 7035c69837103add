// SPDX-License-Identifier: Apache-2.0
// Parent side of an execution: start a supervised process tree and pump its output.
#pragma once

#include "pagi_exec/spawner.hpp"

namespace pagi_exec::sys {

struct NativeArgs;
struct CgroupLease;
struct CgroupUsage;
class Janitor;

/// What a spawner adds to a plan's process tree, prepared in the parent.
struct TreeSetup {
  const NativeArgs* native = nullptr;   ///< native: the sandbox init's arguments
  const CgroupLease* cgroup = nullptr;  ///< the run's cgroup: a cwd/bwrap command joins it; killed whole
                                        ///< from outside when supervision fails
  int fd3 = -1;                         ///< cwd/bwrap: becomes the command's fd 3 (plan.seccomp_fd)
  int native_plan = -1;                 ///< native: the spawner's sealed root plan and filter
                                        ///< (tree_wire.hpp) for the spawn helper; -1: clone here
};

/// Runs a cwd or bwrap `plan` under a supervisor process (supervisor.hpp), or a native plan
/// under its sandbox init (native.hpp) when `setup.native` is given, and pumps the output with
/// the plan's caps. Returns by the time limit plus backstop_grace_us (pump.hpp) at the latest:
/// when the supervisor dies or overruns, the tree is killed from outside (through its cgroup)
/// and the output is abandoned. The supervisor's (init's) reap is left to `cleanup`, once the report
/// says the tree is gone. The spawn helper clones the supervisor (init) when it runs
/// (spawn_helper.hpp). Thread-safe.
[[nodiscard]] Result<ProcessResult> run_process_tree(const LaunchPlan& plan, const TreeSetup& setup, Janitor& cleanup,
                                                     std::stop_token stop, const OutputSink& sink);

/// What the run's cgroup counted (OOM kill, pids limit, peak memory), added to its result.
void add_cgroup_usage(Result<ProcessResult>& result, const CgroupUsage& usage) noexcept;

}  // namespace pagi_exec::sys
