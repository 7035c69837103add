// SPDX-License-Identifier: Apache-2.0
// The per-execution supervisor of cwd and bwrap runs: code that runs in the forked child.
//
// Everything here runs after clone() in a multithreaded process (the gRPC server), so it may
// only call async-signal-safe functions (signal-safety(7)): raw system calls, no allocation,
// no locks, no stdio. All memory it reads is prepared by the parent before the clone.
#pragma once

#include <cstdint>

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

/// The step that failed, for the parent's error message.
enum class SupervisorStep : std::int32_t {
  none = 0, close_fds, setsid, subreaper, fork, pidfd, poll, wait, native_init, cgroup, drop_privileges,
};

/// What a supervisor writes first on the report pipe, before the ChildReport (a native init
/// writes none): the command's pid, which is also its process group (0: it never started). Should
/// the supervisor die, the parent can still kill that group when no cgroup holds the run.
struct CommandStarted {
  std::int32_t pid = 0;
};

/// What the supervisor or init reports once the whole tree is gone. Plain old data, written
/// in one write(2) of fewer than PIPE_BUF bytes, so the parent reads all of it or none.
struct ChildReport {
  std::int32_t step = 0;           ///< SupervisorStep that failed, 0 when supervision worked
  std::int32_t step_errno = 0;
  std::int32_t init_step = 0;      ///< native: InitStep that failed (step is native_init)
  std::int32_t root_step = 0;      ///< native: RootStep that failed
  std::int32_t exec_errno = 0;     ///< execve's errno when the command never ran
  std::int32_t wait_status = 0;    ///< the command's wait status
  std::int32_t timed_out = 0;
  std::int32_t cancelled = 0;
  std::int64_t user_us = 0;        ///< CPU time of the command and the children it waited for
  std::int64_t system_us = 0;
  std::int64_t max_rss_kb = 0;
  std::int64_t elapsed_us = 0;     ///< from start of the command to its exit or kill
};

/// Runs in the child of clone(): becomes a session leader and child subreaper, forks and execs
/// the command (in its cgroup, as args.uid/gid when args.drop), enforces the time limit and the control pipe, kills every descendant once the
/// command is over, writes one ChildReport and exits. Never returns.
[[noreturn]] void supervise_in_child(const ChildArgs& args) noexcept;

}  // namespace pagi_exec::sys
