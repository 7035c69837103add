// SPDX-License-Identifier: Apache-2.0
// The per-execution supervisor of cwd and bwrap runs: code that runs in the forked child.
//
// Everything here runs after clone() in a multithreaded process (the gRPC server), so it may
// only call async-signal-safe functions (signal-safety(7)): raw system calls, no allocation,
// no locks, no stdio. All memory it reads is prepared by the parent before the clone.
#pragma once

#include <cstdint>

#include "sys/report.hpp"

namespace pagi_exec::sys {

struct RlimitSet;

/// What a supervisor (or the native init) needs, prepared in the parent.
struct ChildArgs {
  const char* const* argv = nullptr;  ///< argv[0] is what execve runs
  const char* const* envp = nullptr;
  const char* cwd = nullptr;
  int stdout_fd = -1;   ///< write end of the stdout pipe: becomes the command's fd 1
  int stderr_fd = -1;   ///< write end of the stderr pipe: becomes the command's fd 2
  int report_fd = -1;   ///< write end of the report pipe: one ChildReport, then EOF
  int control_fd = -1;  ///< read end of the control pipe: EOF or a byte means "kill it now"
  std::int64_t timeout_us = 0;
  const RlimitSet* rlimits = nullptr;  ///< applied to the command
  // cwd and bwrap only (the native init has its own checklist):
  bool drop = false;          ///< the command drops to uid/gid, with no supplementary groups
  bool no_new_privs = false;  ///< the command starts with no_new_privs (setuid bits inert)
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  int fd3 = -1;            ///< becomes the command's fd 3 (bwrap's --seccomp 3); -1: none
  int cgroup_procs[2] = {-1, -1};  ///< cgroup.procs the command joins (v1: memory, pids), -1 unused
};

/// Runs in the child of clone(): becomes a session leader and child subreaper, starts the command
/// (command_start.hpp: in its cgroup, as args.uid/gid when args.drop), enforces the time limit
/// and the control pipe, kills every descendant once the command is over, writes one ChildReport
/// and exits. Never returns.
[[noreturn]] void supervise_in_child(const ChildArgs& args) noexcept;

/// A pooled supervisor (a worker of the spawn helper, see spawn_helper_process.cpp) serves one run
/// after another. Once, when it starts: the session and subreaper part of supervise_in_child.
[[nodiscard]] bool become_pooled_supervisor() noexcept;
/// One run in a pooled supervisor: as supervise_in_child, keeping `helper_socket` open, but it
/// returns once the report is written and no process of the run is left. A step that fails
/// still ends the process (after its report): the helper then starts a fresh supervisor.
void supervise_pooled(const ChildArgs& args, int helper_socket) noexcept;

}  // namespace pagi_exec::sys
