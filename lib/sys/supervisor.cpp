// SPDX-License-Identifier: Apache-2.0
// The supervisor and the command's pre-exec setup. Async-signal-safe code only (see header).
//
// Why a supervisor process: the command may double-fork, call setsid(), ignore or block signals
// or stop itself. A process that is a child subreaper (PR_SET_CHILD_SUBREAPER, see prctl(2))
// inherits every orphan of its subtree, so once the command is over it can find and SIGKILL all
// that remains, however it tried to detach. The server itself cannot be that subreaper: it runs
// many executions at once and would not know whose orphans it inherited.
#include "sys/supervisor.hpp"

#include "sys/native.hpp"
#include "sys/rlimits.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>

namespace pagi_exec::sys {
namespace {

std::int64_t monotonic_us() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

// Closes every descriptor >= 3 except the (at most 8) listed ones, using close_range(2)
// over the gaps between them.
bool close_fds_except(const int* keep, std::size_t count) noexcept {
  int sorted[8];
  std::size_t n = 0;
  for (std::size_t i = 0; i < count && n < 8; ++i) {
    if (keep[i] >= 3) sorted[n++] = keep[i];
  }
  for (std::size_t i = 1; i < n; ++i) {  // insertion sort: tiny and allocation-free
    for (std::size_t j = i; j > 0 && sorted[j - 1] > sorted[j]; --j) {
      const int t = sorted[j];
      sorted[j] = sorted[j - 1];
      sorted[j - 1] = t;
    }
  }
  unsigned int from = 3;
  for (std::size_t i = 0; i < n; ++i) {
    const auto fd = static_cast<unsigned int>(sorted[i]);
    if (fd > from && ::syscall(SYS_close_range, from, fd - 1, 0) != 0) return false;
    from = fd + 1;
  }
  return ::syscall(SYS_close_range, from, ~0U, 0) == 0;
}

// Signal dispositions and the mask survive execve (signal(7)); the server's (ignored SIGPIPE,
// signals blocked for its sigwait thread) must not leak into the command.
void reset_signals() noexcept {
  struct sigaction dfl{};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);
  }
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

// fork() without glibc's atfork handlers, which are not async-signal-safe (a handler of another
// library could take a lock some other thread of the server held at the fork).
pid_t raw_fork() noexcept { return static_cast<pid_t>(::syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0)); }

void write_all(int fd, const void* data, std::size_t size) noexcept {
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    const auto n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    size -= static_cast<std::size_t>(n);
  }
}

// The command's side, between fork and exec: own session (no controlling terminal, so no
// TIOCSTI injection into ours), dies with the supervisor, stdio wired, nothing else inherited.
[[noreturn]] void exec_command_in_child(const SupervisorArgs& args, int exec_error_fd,
                                        pid_t supervisor) noexcept {
  ::setsid();
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != supervisor) ::_exit(127);  // the supervisor died before prctl took effect
  reset_signals();
  int err = args.rlimits != nullptr ? apply_rlimits_in_child(*args.rlimits) : 0;
  const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (err != 0) {
    // rlimits could not be applied: never run the command without them
  } else if (devnull < 0 || ::dup2(devnull, 0) < 0 || ::dup2(args.stdout_fd, 1) < 0 ||
      ::dup2(args.stderr_fd, 2) < 0) {
    err = errno;
  } else if (::chdir(args.cwd) != 0) {
    err = errno;
  } else {
    // Everything above 2 closes at exec, including the exec-error pipe (already O_CLOEXEC).
    ::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
    ::execve(args.argv[0], const_cast<char* const*>(args.argv), const_cast<char* const*>(args.envp));
    err = errno;
  }
  write_all(exec_error_fd, &err, sizeof err);
  ::_exit(127);
}


// Appends the decimal digits of `value` at buf[at]; returns the new end. No snprintf: it is
// not async-signal-safe.
std::size_t append_number(char* buf, std::size_t at, std::uint64_t value) noexcept {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value > 0);
  while (n > 0) buf[at++] = digits[--n];
  return at;
}

int open_proc_setgroups(pid_t pid) noexcept {
  char path[64] = "/proc/";
  std::size_t at = append_number(path, 6, static_cast<std::uint64_t>(pid));
  const char tail[] = "/setgroups";
  for (char c : tail) path[at++] = c;
  return ::open(path, O_WRONLY | O_CLOEXEC);
}

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


[[noreturn]] void report_and_exit(int fd, const SupervisorReport& report) noexcept {
  write_all(fd, &report, sizeof report);
  ::_exit(0);
}

[[noreturn]] void fail_step(const SupervisorArgs& args, SupervisorReport& report, SupervisorStep step) noexcept {
  report.step = static_cast<std::int32_t>(step);
  report.step_errno = errno;
  report_and_exit(args.report_fd, report);
}

struct Started {
  pid_t pid = -1;
  int init_report_fd = -1;  // native only
};

// The command as our direct child, in its own session; a CLOEXEC pipe tells whether execve
// worked (EOF) or not (errno).
Started start_direct(const SupervisorArgs& args, SupervisorReport& report) noexcept {
  int exec_pipe[2];
  if (::pipe2(exec_pipe, O_CLOEXEC) != 0) fail_step(args, report, SupervisorStep::pipe);
  const pid_t self = ::getpid();
  const pid_t command = raw_fork();
  if (command < 0) fail_step(args, report, SupervisorStep::fork);
  if (command == 0) {
    ::close(exec_pipe[0]);
    exec_command_in_child(args, exec_pipe[1], self);
  }
  ::close(exec_pipe[1]);
  int exec_errno = 0;
  while (::read(exec_pipe[0], &exec_errno, sizeof exec_errno) < 0 && errno == EINTR) {}
  ::close(exec_pipe[0]);
  report.exec_errno = exec_errno;
  return {command, -1};
}

// Writes "<inside> <outside> 1" to a /proc/<pid>/{uid,gid}_map file, without snprintf.
bool write_map(pid_t pid, const char* file, std::uint32_t inside, std::uint32_t outside) noexcept {
  char path[64] = "/proc/";
  std::size_t at = 6;
  at = append_number(path, at, static_cast<std::uint64_t>(pid));
  path[at++] = '/';
  for (const char* c = file; *c != '\0'; ++c) path[at++] = *c;
  path[at] = '\0';
  char line[64];
  std::size_t n = append_number(line, 0, inside);
  line[n++] = ' ';
  n = append_number(line, n, outside);
  line[n++] = ' ';
  line[n++] = '1';
  line[n++] = '\n';
  const int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::write(fd, line, n) == static_cast<ssize_t>(n);
  ::close(fd);
  return ok;
}

// The native init as PID 1 of new namespaces (see native.cpp). In a user namespace, the
// uid/gid maps are written from here, then the init is released.
Started start_native(const SupervisorArgs& args, SupervisorReport& report) noexcept {
  const NativeArgs& native = *args.native;
  int init_report[2], maps_ready[2] = {-1, -1};
  if (::pipe2(init_report, O_CLOEXEC) != 0) fail_step(args, report, SupervisorStep::pipe);
  if (native.user_namespace && ::pipe2(maps_ready, O_CLOEXEC) != 0) fail_step(args, report, SupervisorStep::pipe);
  const auto init = static_cast<pid_t>(::syscall(SYS_clone, native_clone_flags(native) | SIGCHLD, 0, 0, 0, 0));
  if (init < 0) fail_step(args, report, SupervisorStep::fork);
  if (init == 0) {
    ::close(init_report[0]);
    if (maps_ready[1] >= 0) ::close(maps_ready[1]);
    run_init_in_child(args, init_report[1], maps_ready[0]);
  }
  ::close(init_report[1]);
  if (native.user_namespace) {
    ::close(maps_ready[0]);
    // setgroups must be denied before an unprivileged gid_map (user_namespaces(7)).
    const int fd = open_proc_setgroups(init);
    const bool ok = fd >= 0 && ::write(fd, "deny", 4) == 4;
    if (fd >= 0) ::close(fd);
    if (!ok || !write_map(init, "uid_map", native.uid, ::getuid()) || !write_map(init, "gid_map", native.gid, ::getgid())) {
      ::kill(init, SIGKILL);
      fail_step(args, report, SupervisorStep::user_maps);
    }
    ::close(maps_ready[1]);  // EOF releases the init
  }
  return {init, init_report[0]};
}

// After the init is reaped: its report holds the command's status, or the step that failed.
// No report means the init was killed (time limit, cancel): the supervisor's own status stands.
void read_init_report(int fd, SupervisorReport& report) noexcept {
  InitReport init{};
  std::size_t got = 0;
  while (got < sizeof init) {
    const auto n = ::read(fd, reinterpret_cast<char*>(&init) + got, sizeof init - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (got != sizeof init) return;
  if (init.step != 0) {
    report.step = static_cast<std::int32_t>(SupervisorStep::native_init);
    report.step_errno = init.step_errno;
    report.init_step = init.step;
    report.root_step = init.root_step;
    return;
  }
  report.exec_errno = init.exec_errno;
  report.wait_status = init.wait_status;
  report.user_us = init.user_us;
  report.system_us = init.system_us;
  report.max_rss_kb = init.max_rss_kb;
}

}  // namespace

void supervise_in_child(const SupervisorArgs& args) noexcept {
  SupervisorReport report{};
  // 1. Hold nothing of the server's but our four pipes; detach from its session.
  int keep[8] = {args.stdout_fd, args.stderr_fd, args.report_fd, args.control_fd, -1, -1, -1, -1};
  if (args.native != nullptr) {
    keep[4] = args.native->netns_fd;
    keep[5] = args.native->cgroup_procs[0];
    keep[6] = args.native->cgroup_procs[1];
  }
  if (!close_fds_except(keep, 8)) fail_step(args, report, SupervisorStep::close_fds);
  struct sigaction ign{};
  ign.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ign, nullptr);
  if (::setsid() < 0) fail_step(args, report, SupervisorStep::setsid);
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) fail_step(args, report, SupervisorStep::subreaper);

  // 2. Start the command: directly, or behind the native sandbox's init.
  const std::int64_t started = monotonic_us();
  Started run = args.native != nullptr ? start_native(args, report) : start_direct(args, report);
  ::close(args.stdout_fd);  // only the command's tree holds the output pipes now
  ::close(args.stderr_fd);
  const pid_t command = run.pid;

  // 3. Wait for the command, the deadline, or the parent's word (or death: EOF on control).
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, command, 0));
  if (pidfd < 0) {
    ::kill(command, SIGKILL);
    fail_step(args, report, SupervisorStep::pidfd);
  }
  const std::int64_t deadline = started + args.timeout_us;
  while (report.exec_errno == 0) {
    const std::int64_t left = deadline - monotonic_us();
    if (left <= 0) {
      report.timed_out = 1;
      break;
    }
    pollfd fds[2] = {{pidfd, POLLIN, 0}, {args.control_fd, POLLIN, 0}};
    const timespec wait{left / 1'000'000, (left % 1'000'000) * 1000};
    const int ready = ::ppoll(fds, 2, &wait, nullptr);
    if (ready < 0 && errno != EINTR) fail_step(args, report, SupervisorStep::poll);
    if (ready <= 0) continue;
    if (fds[1].revents != 0) {
      report.cancelled = 1;
      break;
    }
    if (fds[0].revents != 0) break;  // the command (or the native init) exited
  }

  // 4. End the command (if still running), collect its status, then clear the whole subtree.
  //    Killing the native init ends its whole PID namespace.
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
  if (args.native != nullptr) read_init_report(run.init_report_fd, report);
  kill_descendants(command);
  report_and_exit(args.report_fd, report);
}

}  // namespace pagi_exec::sys
