// SPDX-License-Identifier: Apache-2.0
// The command's side of the last clone: its own session, default signals, and for a supervised
// command the pre-exec setup (see command_start.hpp). Async-signal-safe code only.
#include "sys/command_start.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "sys/child.hpp"
#include "sys/rlimits.hpp"
#include "sys/supervisor.hpp"

namespace pagi_exec::sys {
namespace {

// Shared with the parent's memory until execve (CLONE_VM): what the command's side leaves there.
struct Shared {
  const ChildArgs* args;
  CommandSetup setup;
  volatile int exec_errno;
  volatile int failed_step;  // a SupervisorStep: setup failed, the command never ran
  volatile bool announced;   // CommandStarted is on the report pipe
};

[[noreturn]] void give_up(Shared& start, int err, SupervisorStep step = SupervisorStep::none) noexcept {
  start.exec_errno = err;
  start.failed_step = static_cast<int>(step);
  ::_exit(127);
}

// Raw system calls: glibc's setgroups/setresgid/setresuid broadcast the change to every thread
// it believes the process has (__nptl_setxid), and after a clone of the multithreaded server it
// would wait for threads that exist only in the parent. setresuid to a non-zero uid clears every
// capability (capabilities(7)); groups first, while we may still change them.
bool drop_to_in_child(std::uint32_t uid, std::uint32_t gid) noexcept {
  return ::syscall(SYS_setgroups, 0, nullptr) == 0 && ::syscall(SYS_setresgid, gid, gid, gid) == 0 &&
         ::syscall(SYS_setresuid, uid, uid, uid) == 0;
}

// A supervised command: its cgroup, rlimits and stdio while still privileged, then the drop to
// the sandbox's uid/gid with no_new_privs, so nothing the command runs acts as host root: it
// cannot signal or trace its supervisor (root), plant setuid-root files, or gain privileges from
// a setuid binary. Exits (127) on failure.
void prepare_in_child(Shared& start) noexcept {
  const ChildArgs& args = *start.args;
  // 1. Still privileged: the run's cgroup ("0" is the writer), rlimits, stdio, the folder.
  for (const int procs : args.cgroup_procs) {
    if (procs >= 0 && ::write(procs, "0", 1) != 1) give_up(start, errno, SupervisorStep::cgroup);
  }
  // Never run the command without its rlimits.
  if (const int err = args.rlimits != nullptr ? apply_rlimits_in_child(*args.rlimits) : 0; err != 0) {
    give_up(start, err);
  }
  const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull < 0 || ::dup2(devnull, 0) < 0 || ::dup2(args.stdout_fd, 1) < 0 || ::dup2(args.stderr_fd, 2) < 0 ||
      ::chdir(args.cwd) != 0) {
    give_up(start, errno);
  }
  // 2. Give up the server's identity for good.
  if (args.drop && !drop_to_in_child(args.uid, args.gid)) give_up(start, errno, SupervisorStep::drop_privileges);
  if (args.no_new_privs && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    give_up(start, errno, SupervisorStep::drop_privileges);
  }
  // After the uid change: a change of credentials clears the parent-death signal (prctl(2)).
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  // 3. Nothing of ours survives the exec but stdio and, for bwrap, its seccomp filter at fd 3
  //    (dup2 clears close-on-exec on the copy; dup2(3, 3) would not).
  ::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
  if (args.fd3 == 3 ? ::fcntl(3, F_SETFD, 0) != 0 : args.fd3 >= 0 && ::dup2(args.fd3, 3) < 0) give_up(start, errno);
  // 4. Our pid (and process group) to the parent before anything the command chose runs: should
  //    the command kill its supervisor at once, the parent still knows what to kill (pump.cpp).
  const CommandStarted started{static_cast<std::int32_t>(::getpid())};
  write_all(args.report_fd, &started, sizeof started);
  start.announced = true;
}

int run_command(void* arg) noexcept {
  auto& start = *static_cast<Shared*>(arg);
  ::setsid();  // no controlling terminal: no TIOCSTI into anyone's
  reset_signals();
  if (start.setup == CommandSetup::full) prepare_in_child(start);
  const ChildArgs& args = *start.args;
  ::execve(args.argv[0], const_cast<char* const*>(args.argv), const_cast<char* const*>(args.envp));
  give_up(start, errno);
}

// Private to each supervisor or init: each is a copy of the server, and starts one command.
alignas(64) char command_stack[64 * 1024];

}  // namespace

CommandStart start_command_in_child(const ChildArgs& args, CommandSetup setup) noexcept {
  Shared shared{&args, setup, 0, 0, false};
  const pid_t pid =
      ::clone(run_command, command_stack + sizeof command_stack, CLONE_VM | CLONE_VFORK | SIGCHLD, &shared);
  return CommandStart{pid, shared.exec_errno, static_cast<SupervisorStep>(shared.failed_step), shared.announced};
}

}  // namespace pagi_exec::sys
