// SPDX-License-Identifier: Apache-2.0
// Starting the command from the supervisor or the native init: the last clone before execve.
//
// Runs after clone() in a multithreaded process (the gRPC server), so everything here is
// async-signal-safe (signal-safety(7)): raw system calls, no allocation, no locks, no stdio.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "sys/report.hpp"

namespace pagi_exec::sys {

struct ChildArgs;

/// What the command's side does between its clone and execve.
enum class CommandSetup : std::uint8_t {
  /// Own session and default signals only: the native init did the rest for the whole sandbox.
  exec_only,
  /// The supervisor's command: also joins the run's cgroup, applies the rlimits, connects stdio,
  /// enters the folder, drops to args.uid/gid with no_new_privs (as args says), keeps only
  /// stdio and args.fd3 open across execve, and last writes its CommandStarted to
  /// args.report_fd, so the parent knows its process group before the command can act.
  full,
};

/// How starting the command went.
struct CommandStart {
  pid_t pid = -1;       ///< the command (also its process group); -1: the clone failed (see errno)
  int exec_errno = 0;   ///< non-zero: the command never ran (execve failed, or rlimits/stdio/fd 3)
  SupervisorStep failed_step = SupervisorStep::none;  ///< a setup step that failed (cgroup, drop)
  bool announced = false;  ///< full setup: the command wrote its CommandStarted itself
};

/// In the supervisor or init: clones the command vfork-style (CLONE_VM | CLONE_VFORK, on a stack
/// of this process, as posix_spawn does: no page table of the server is copied for it), which
/// sets itself up as `setup` says and execs args.argv. Returns once it exec'd or failed to; the
/// caller reaps it. Async-signal-safe.
[[nodiscard]] CommandStart start_command_in_child(const ChildArgs& args, CommandSetup setup) noexcept;

}  // namespace pagi_exec::sys
