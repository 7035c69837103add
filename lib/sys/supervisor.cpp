// SPDX-License-Identifier: Apache-2.0
// The supervisor of cwd and bwrap runs, and the command's pre-exec setup. Async-signal-safe
// code only (see header).
//
// Why a supervisor process: the command may double-fork, call setsid(), ignore or block signals
// or stop itself. A process that is a child subreaper (PR_SET_CHILD_SUBREAPER, see prctl(2))
// inherits every orphan of its subtree, so once the command is over it can find and SIGKILL all
// that remains, however it tried to detach. The server itself cannot be that subreaper: it runs
// many executions at once and would not know whose orphans it inherited. (The native sandbox
// needs no supervisor: its PID namespace dies with its init.)
//
// The supervisor keeps the server's identity (root, when the server is); the command gives it up
// before exec (start_command), so it cannot signal, trace or outlive the supervisor by killing
// it. Should the supervisor die anyway, the parent kills the run's cgroup (spawn.cpp).
#include "sys/supervisor.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include "sys/child.hpp"
#include "sys/rlimits.hpp"

namespace pagi_exec::sys {
namespace {

// The command's side, between clone and exec: own session (no controlling terminal, so no
// TIOCSTI into ours), its cgroup, rlimits and stdio while still privileged, then the drop to the
// sandbox's uid/gid with no_new_privs, so nothing the command runs acts as host root: it cannot
// signal or trace this supervisor (root), plant setuid-root files, or gain privileges from a
// setuid binary. It runs vfork-style on its own stack in the supervisor's memory until it execs
// (as posix_spawn does), so no page tables of the server are copied for it.
struct CommandStart {
  const ChildArgs* args;
  volatile int exec_errno;
  volatile int failed_step;  // a SupervisorStep: setup failed, the command never ran
};

[[noreturn]] void setup_failed(CommandStart* start, SupervisorStep step) noexcept {
  start->exec_errno = errno;
  start->failed_step = static_cast<int>(step);
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

int start_command(void* arg) noexcept {
  auto* start = static_cast<CommandStart*>(arg);
  const ChildArgs& args = *start->args;
  ::setsid();
  reset_signals();
  // 1. Still privileged: the run's cgroup ("0" is the writer), rlimits, stdio, the folder.
  for (const int procs : args.cgroup_procs) {
    if (procs >= 0 && ::write(procs, "0", 1) != 1) setup_failed(start, SupervisorStep::cgroup);
  }
  int err = args.rlimits != nullptr ? apply_rlimits_in_child(*args.rlimits) : 0;
  const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (err != 0) {
    start->exec_errno = err;  // rlimits could not be applied: never run the command without them
    ::_exit(127);
  }
  if (devnull < 0 || ::dup2(devnull, 0) < 0 || ::dup2(args.stdout_fd, 1) < 0 || ::dup2(args.stderr_fd, 2) < 0 ||
      ::chdir(args.cwd) != 0) {
    start->exec_errno = errno;
    ::_exit(127);
  }
  // 2. Give up the server's identity for good.
  if (args.drop && !drop_to_in_child(args.uid, args.gid)) setup_failed(start, SupervisorStep::drop_privileges);
  if (args.no_new_privs && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    setup_failed(start, SupervisorStep::drop_privileges);
  }
  // After the uid change: a change of credentials clears the parent-death signal (prctl(2)).
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  // 3. Nothing of ours survives the exec but stdio and, for bwrap, its seccomp filter at fd 3
  //    (dup2 clears close-on-exec on the copy; dup2(3, 3) would not).
  ::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
  if (args.fd3 == 3 ? ::fcntl(3, F_SETFD, 0) != 0 : args.fd3 >= 0 && ::dup2(args.fd3, 3) < 0) {
    start->exec_errno = errno;
    ::_exit(127);
  }
  ::execve(args.argv[0], const_cast<char* const*>(args.argv), const_cast<char* const*>(args.envp));
  start->exec_errno = errno;
  ::_exit(127);
}

alignas(64) char command_stack[64 * 1024];  // private to each supervisor: it is a copy of the server

// SIGKILLs every process left in the subtree and reaps it. Orphans reparent to us (we are a
// subreaper) before their parent becomes reapable, so looping until wait reports ECHILD
// leaves nothing behind, whatever double-forks or setsid() calls the command made.
void kill_descendants(pid_t command_pgid) noexcept {
  char path[64] = "/proc/self/task/";
  std::size_t at = append_number(path, 16, static_cast<std::uint64_t>(::getpid()));
  const char tail[] = "/children";
  for (char c : tail) path[at++] = c;
  for (;;) {
    ::kill(-command_pgid, SIGKILL);
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      char buf[4096];
      const auto len = ::read(fd, buf, sizeof buf);
      ::close(fd);
      long pid = 0;
      for (ssize_t i = 0; i < len; ++i) {
        if (buf[i] >= '0' && buf[i] <= '9') {
          pid = pid * 10 + (buf[i] - '0');
        } else if (pid > 0) {
          ::kill(static_cast<pid_t>(pid), SIGKILL);
          ::kill(static_cast<pid_t>(-pid), SIGKILL);  // its process group, if it leads one
          pid = 0;
        }
      }
    }
    int status = 0;
    pid_t reaped = 0;
    while ((reaped = ::waitpid(-1, &status, WNOHANG)) > 0) {}
    if (reaped < 0 && errno == ECHILD) return;
    const timespec pause{0, 200'000};  // children exist but none has died yet
    ::nanosleep(&pause, nullptr);
  }
}

// Whether this supervisor has sent its CommandStarted yet (each supervisor is its own process).
bool started_sent = false;

void send_started(const ChildArgs& args, pid_t command) noexcept {
  if (started_sent) return;
  const CommandStarted started{static_cast<std::int32_t>(command)};
  write_all(args.report_fd, &started, sizeof started);
  started_sent = true;
}

[[noreturn]] void fail_step(const ChildArgs& args, ChildReport& report, SupervisorStep step) noexcept {
  send_started(args, 0);
  report.step = static_cast<std::int32_t>(step);
  report.step_errno = errno;
  write_all(args.report_fd, &report, sizeof report);
  ::_exit(0);
}

}  // namespace

void supervise_in_child(const ChildArgs& args) noexcept {
  ChildReport report{};
  // 1. Hold nothing of the server's but our pipes (and the run's cgroup and bwrap's filter);
  //    detach from its session.
  const int keep[] = {args.stdout_fd,       args.stderr_fd,       args.report_fd, args.control_fd,
                      args.cgroup_procs[0], args.cgroup_procs[1], args.fd3};
  if (!close_fds_except(keep, 7)) fail_step(args, report, SupervisorStep::close_fds);
  struct sigaction ign{};
  ign.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ign, nullptr);
  if (::setsid() < 0) fail_step(args, report, SupervisorStep::setsid);
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) fail_step(args, report, SupervisorStep::subreaper);

  // 2. Start the command; the clone returns once it exec'd (or failed to: exec_errno).
  const std::int64_t started = monotonic_us();
  CommandStart start{&args, 0, 0};
  const pid_t command = ::clone(start_command, command_stack + sizeof command_stack,
                                CLONE_VM | CLONE_VFORK | SIGCHLD, &start);
  if (command < 0) fail_step(args, report, SupervisorStep::fork);
  ::close(args.stdout_fd);  // only the command's tree holds the output pipes now
  ::close(args.stderr_fd);
  send_started(args, start.failed_step == 0 ? command : 0);
  if (start.failed_step != 0) {
    ::waitpid(command, nullptr, 0);
    errno = start.exec_errno;
    fail_step(args, report, static_cast<SupervisorStep>(start.failed_step));
  }
  const int exec_errno = start.exec_errno;
  report.exec_errno = exec_errno;

  // 3. Wait for the command, the deadline, or the parent's word (or death: EOF on control).
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, command, 0));
  if (pidfd < 0) {
    ::kill(command, SIGKILL);
    fail_step(args, report, SupervisorStep::pidfd);
  }
  if (exec_errno == 0) {
    switch (wait_readable(pidfd, args.control_fd, started + args.timeout_us)) {
      case Wake::readable: break;  // the command exited
      case Wake::deadline: report.timed_out = 1; break;
      case Wake::control: report.cancelled = 1; break;
      case Wake::error: fail_step(args, report, SupervisorStep::poll);
    }
  }

  // 4. End the command (if still running), collect its status, then clear the whole subtree.
  if (report.timed_out != 0 || report.cancelled != 0) {
    ::kill(-command, SIGKILL);
    ::kill(command, SIGKILL);
  }
  rusage usage{};
  int status = 0;
  while (::wait4(command, &status, 0, &usage) < 0) {
    if (errno != EINTR) fail_step(args, report, SupervisorStep::wait);
  }
  report.elapsed_us = monotonic_us() - started;
  report.wait_status = status;
  report.user_us = usage.ru_utime.tv_sec * 1'000'000 + usage.ru_utime.tv_usec;
  report.system_us = usage.ru_stime.tv_sec * 1'000'000 + usage.ru_stime.tv_usec;
  report.max_rss_kb = usage.ru_maxrss;
  kill_descendants(command);
  write_all(args.report_fd, &report, sizeof report);
  ::_exit(0);
}

}  // namespace pagi_exec::sys
