// SPDX-License-Identifier: Apache-2.0
// The supervisor of cwd and bwrap runs. Async-signal-safe code only (see header).
//
// Why a supervisor process: the command may double-fork, call setsid(), ignore or block signals
// or stop itself. A process that is a child subreaper (PR_SET_CHILD_SUBREAPER, see prctl(2))
// inherits every orphan of its subtree, so once the command is over it can find and SIGKILL all
// that remains, however it tried to detach. The server itself cannot be that subreaper: it runs
// many executions at once and would not know whose orphans it inherited. (The native sandbox
// needs no supervisor: its PID namespace dies with its init.)
//
// The supervisor keeps the server's identity (root, when the server is); the command gives it up
// before exec (command_start.cpp), so it cannot signal, trace or outlive the supervisor by killing
// it. Should the supervisor die anyway, the parent kills the run's cgroup (pump.cpp).
#include "sys/supervisor.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include "sys/child.hpp"
#include "sys/command_start.hpp"

namespace pagi_exec::sys {
namespace {

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

// Whether this run's CommandStarted was sent yet (a supervisor serves one run at a time).
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

// Hold nothing of the server's but the run's descriptors (and `also_keep`, a pooled supervisor's
// socket to the helper).
void close_all_but_run_in_child(const ChildArgs& args, ChildReport& report, int also_keep) noexcept {
  const int keep[] = {args.stdout_fd,       args.stderr_fd,       args.report_fd, args.control_fd,
                      args.cgroup_procs[0], args.cgroup_procs[1], args.fd3,       also_keep};
  if (!close_fds_except(keep, sizeof keep / sizeof keep[0])) fail_step(args, report, SupervisorStep::close_fds);
}

// Detach from the server's session; inherit every orphan of the command's tree. The step that
// failed, or none.
SupervisorStep become_subreaper() noexcept {
  struct sigaction ign{};
  ign.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ign, nullptr);
  if (::setsid() < 0) return SupervisorStep::setsid;
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) return SupervisorStep::subreaper;
  return SupervisorStep::none;
}

// The command, its pid sent to the parent first: by the command itself before its exec, else here
// (0 when its setup failed).
pid_t start_supervised_in_child(const ChildArgs& args, ChildReport& report) noexcept {
  const CommandStart start = start_command_in_child(args, CommandSetup::full);
  if (start.pid < 0) fail_step(args, report, SupervisorStep::fork);
  ::close(args.stdout_fd);  // only the command's tree holds the output pipes now
  ::close(args.stderr_fd);
  started_sent = start.announced;
  send_started(args, start.failed_step == SupervisorStep::none ? start.pid : 0);
  if (start.failed_step != SupervisorStep::none) {
    ::waitpid(start.pid, nullptr, 0);
    errno = start.exec_errno;
    fail_step(args, report, start.failed_step);
  }
  report.exec_errno = start.exec_errno;
  return start.pid;
}

void wait_for_command_in_child(const ChildArgs& args, pid_t command, std::int64_t started,
                               ChildReport& report) noexcept {
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, command, 0));
  if (pidfd < 0) {
    ::kill(command, SIGKILL);
    fail_step(args, report, SupervisorStep::pidfd);
  }
  const Wake wake = report.exec_errno != 0 ? Wake::readable  // it never ran: nothing to wait for
                                            : wait_readable(pidfd, args.control_fd, started + args.timeout_us);
  ::close(pidfd);  // a pooled supervisor serves on: nothing of a run may stay open
  switch (wake) {
    case Wake::readable: break;  // the command exited
    case Wake::deadline: report.timed_out = 1; break;
    case Wake::control: report.cancelled = 1; break;
    case Wake::error: fail_step(args, report, SupervisorStep::poll);
  }
}

// The command's wait status and what it and the children it waited for used.
void collect_in_child(const ChildArgs& args, pid_t command, std::int64_t started, ChildReport& report) noexcept {
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
}

// One run, once the supervisor is a subreaper with nothing else open.
void supervise_run(const ChildArgs& args, ChildReport& report) noexcept {
  started_sent = false;
  // 1. Start the command; this returns once it exec'd (or failed to: exec_errno).
  const std::int64_t started = monotonic_us();
  const pid_t command = start_supervised_in_child(args, report);
  if (report.exec_errno == 0) report.running_us = monotonic_us();
  // 2. Wait for the command, the deadline, or the parent's word (or death: EOF on control).
  wait_for_command_in_child(args, command, started, report);
  // 3. End the command (if still running), collect its status, then clear the whole subtree.
  if (report.timed_out != 0 || report.cancelled != 0) {
    ::kill(-command, SIGKILL);
    ::kill(command, SIGKILL);
  }
  collect_in_child(args, command, started, report);
  kill_descendants(command);
  write_all(args.report_fd, &report, sizeof report);
}

}  // namespace

void supervise_in_child(const ChildArgs& args) noexcept {
  ChildReport report{};
  close_all_but_run_in_child(args, report, -1);
  if (const auto failed = become_subreaper(); failed != SupervisorStep::none) fail_step(args, report, failed);
  supervise_run(args, report);
  ::_exit(0);
}

bool become_pooled_supervisor() noexcept { return become_subreaper() == SupervisorStep::none; }

void supervise_pooled(const ChildArgs& args, int helper_socket) noexcept {
  ChildReport report{};
  close_all_but_run_in_child(args, report, helper_socket);
  supervise_run(args, report);
}

}  // namespace pagi_exec::sys
