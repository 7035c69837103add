// SPDX-License-Identifier: Apache-2.0
// The native sandbox's init: one checklist, in the order the kernel's rules require, then the
// supervision of the command.
//
// Order matters:
//  - the root is built while we still hold CAP_SYS_ADMIN, inside the new PID namespace (a proc
//    mount shows the PID namespace of its mounter);
//  - cgroups are joined and the network namespace entered before privileges are dropped
//    (both need privileges), and rlimits set before too (raising needs CAP_SYS_RESOURCE);
//  - the capability bounding set is cleared before setresuid (PR_CAPBSET_DROP needs
//    CAP_SETPCAP); setresuid to a non-zero uid then clears every capability (capabilities(7));
//  - no_new_privs must precede the seccomp filter (seccomp(2)) and makes setuid binaries inert;
//  - the filter is last: it refuses mount, setns and unshare, which the steps above use.
#include "sys/native.hpp"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <string>

#include "sys/child.hpp"
#include "sys/command_start.hpp"
#include "sys/netns.hpp"
#include "sys/rlimits.hpp"
#include "sys/seccomp.hpp"

namespace pagi_exec::sys {
namespace {

// What /proc/1/cmdline shows inside instead of the server's argv.
constexpr char init_name[] = "pagi-exec-init";

[[noreturn]] void fail(const ChildArgs& args, ChildReport& report, InitStep step, int err,
                       RootFailure root = {}) noexcept {
  report.step = static_cast<std::int32_t>(SupervisorStep::native_init);
  report.init_step = static_cast<std::int32_t>(step);
  report.step_errno = err;
  report.root_step = static_cast<std::int32_t>(root.step);
  report.root_item = root.item;
  write_all(args.report_fd, &report, sizeof report);
  ::_exit(0);
}

// The init is a copy of the server: its argv and environment areas hold the server's command
// line and variables, which /proc/1/cmdline and /proc/1/environ would show. Overwrite our copy
// (PR_SET_MM would need CAP_SYS_RESOURCE, which containers often lack).
void hide_server_identity_in_child(const NativeArgs& native) noexcept {
  if (native.arg_start != 0 && native.arg_end > native.arg_start) {
    auto* area = reinterpret_cast<char*>(native.arg_start);
    const std::size_t size = native.arg_end - native.arg_start;
    for (std::size_t i = 0; i < size; ++i) area[i] = i < sizeof init_name ? init_name[i] : '\0';
  }
  if (native.env_start != 0 && native.env_end > native.env_start) {
    auto* area = reinterpret_cast<char*>(native.env_start);
    for (std::size_t i = 0; i < native.env_end - native.env_start; ++i) area[i] = '\0';
  }
}

bool drop_privileges_in_child(const NativeArgs& native) noexcept {
  for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) return false;
  }
  // Raw system calls: glibc's setgroups/setresgid/setresuid broadcast the change to every
  // thread it believes we have (__nptl_setxid), and after a clone of the multithreaded server
  // it waits for threads that exist only in the parent: a hang.
  // The only supplementary group is the one that may read the twin's folder (uid pool).
  const gid_t groups[1] = {native.workspace_gid};
  if (!native.user_namespace && ::syscall(SYS_setgroups, native.workspace_gid != 0 ? 1 : 0, groups) != 0) return false;
  if (::syscall(SYS_setresgid, native.gid, native.gid, native.gid) != 0) return false;
  if (::syscall(SYS_setresuid, native.uid, native.uid, native.uid) != 0) return false;
  // In a user namespace the uid was never 0, so setresuid kept the namespace's capabilities:
  // clear them explicitly (capset(2), version 3 for 64 capability bits).
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capset, &header, data) != 0) return false;
  // After the uid change: nobody inside may read our memory or /proc/1/{environ,mem,maps}.
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  return true;
}

// The sandbox's side of a process tree: root, hostname, network, cgroups, rlimits, stdio.
void contain_in_child(const ChildArgs& args, const NativeArgs& native, ChildReport& report) noexcept {
  const RootFailure root =
      native.template_fd >= 0
          ? enter_template_in_child(native.template_fd, *native.root, native.workspace_tree, native.work_options)
          : build_root_in_child(*native.root, native.workspace, native.work_options);
  if (root) fail(args, report, InitStep::build_root, errno, root);
  static constexpr char hostname[] = "pagi-sandbox";
  if (::sethostname(hostname, sizeof hostname - 1) != 0) fail(args, report, InitStep::hostname, errno);
  if (!native.host_network) {
    const int net_err = native.netns_fd >= 0 ? join_netns_in_child(native.netns_fd) : bring_up_loopback_in_child();
    if (net_err != 0) fail(args, report, InitStep::network, net_err);
  }
  // Join the execution's cgroups ("0" is the writer itself), then hide the host's cgroup tree
  // behind a cgroup namespace rooted at them.
  for (const int procs : native.cgroup_procs) {
    if (procs >= 0 && ::write(procs, "0", 1) != 1) fail(args, report, InitStep::cgroup, errno);
  }
  if (::unshare(CLONE_NEWCGROUP) != 0) fail(args, report, InitStep::cgroup, errno);
  hide_server_identity_in_child(native);
  if (const int err = apply_rlimits_in_child(*args.rlimits); err != 0) fail(args, report, InitStep::rlimits, err);
  const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull < 0 || ::dup2(devnull, 0) < 0 || ::dup2(args.stdout_fd, 1) < 0 || ::dup2(args.stderr_fd, 2) < 0 ||
      ::chdir(args.cwd) != 0) {
    fail(args, report, InitStep::stdio, errno);
  }
  // From here on nothing of ours survives the command's exec (report and control included).
  ::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
}

// Give up every privilege, for good.
void lock_down_in_child(const ChildArgs& args, const NativeArgs& native, ChildReport& report) noexcept {
  if (!drop_privileges_in_child(native)) fail(args, report, InitStep::drop_privileges, errno);
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail(args, report, InitStep::no_new_privs, errno);
  if (native.seccomp != nullptr) {
    if (const int err = load_seccomp_in_child(*native.seccomp); err != 0) fail(args, report, InitStep::seccomp, err);
  }
}

// Reaps every child that has exited; returns true once `command` is among them.
bool reap_in_child(pid_t command, ChildReport& report) noexcept {
  bool done = false;
  int status = 0;
  for (pid_t pid; (pid = ::waitpid(-1, &status, WNOHANG)) > 0;) {
    if (pid == command) {
      report.wait_status = status;
      done = true;
    }
  }
  return done;
}

// The maps pipe stays open until its EOF: closed here, the wait below would end at once (EBADF)
// and the init would race the parent writing its uid/gid maps.
void leave_server_in_child(const ChildArgs& args, const NativeArgs& native, int maps_ready_fd,
                           ChildReport& report) noexcept {
  const int keep[] = {args.stdout_fd,     args.stderr_fd,         args.report_fd,
                      args.control_fd,    native.template_fd,     native.netns_fd,
                      native.cgroup_procs[0], native.cgroup_procs[1], native.workspace_tree,
                      maps_ready_fd};
  if (!close_fds_except(keep, sizeof keep / sizeof keep[0])) fail(args, report, InitStep::close_fds, errno);
  struct sigaction ign{};
  ign.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ign, nullptr);
  ::setsid();
  if (native.user_namespace) {
    char ignored;
    while (::read(maps_ready_fd, &ignored, 1) < 0 && errno == EINTR) {}
    ::close(maps_ready_fd);
  }
}

// SIGCHLD blocked and read from a signalfd (returned), so the wait for the command can also
// watch the deadline and the control pipe.
int watch_children_in_child(const ChildArgs& args, ChildReport& report) noexcept {
  sigset_t chld;
  ::sigemptyset(&chld);
  ::sigaddset(&chld, SIGCHLD);
  if (::sigprocmask(SIG_BLOCK, &chld, nullptr) != 0) fail(args, report, InitStep::signals, errno);
  const int sigfd = ::signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sigfd < 0) fail(args, report, InitStep::signals, errno);
  return sigfd;
}

pid_t start_pid2_in_child(const ChildArgs& args, ChildReport& report) noexcept {
  const CommandStart start = start_command_in_child(args, CommandSetup::exec_only);
  if (start.pid < 0) fail(args, report, InitStep::fork_command, errno);
  report.exec_errno = start.exec_errno;  // known once the command exec'd or failed to
  return start.pid;
}

// As PID 1 we reap every orphan of the namespace until the command itself exits, the deadline
// passes or the control pipe says stop (or hangs up: the server died).
void supervise_command_in_child(const ChildArgs& args, pid_t command, int sigfd, std::int64_t started,
                                ChildReport& report) noexcept {
  bool done = reap_in_child(command, report);
  while (!done) {
    const auto wake = wait_readable(sigfd, args.control_fd, started + args.timeout_us);
    if (wake == Wake::error) fail(args, report, InitStep::supervise, errno);
    if (wake == Wake::deadline) report.timed_out = 1;
    if (wake == Wake::control) report.cancelled = 1;
    if (wake != Wake::readable) break;
    signalfd_siginfo info[8];
    while (::read(sigfd, info, sizeof info) > 0) {}
    done = reap_in_child(command, report);
  }
}

// Nothing of the sandbox outlives the command: kill every process we may signal (all of the
// namespace but us) and reap until none is left (orphans reparent to us), so that when the report
// says "over", it is. Then what the command and its children used.
void end_namespace_in_child(pid_t command, std::int64_t started, ChildReport& report) noexcept {
  ::kill(-1, SIGKILL);
  for (;;) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid == command) report.wait_status = status;
    if (pid < 0 && errno != EINTR) break;  // ECHILD: nobody left
  }
  rusage usage{};
  ::getrusage(RUSAGE_CHILDREN, &usage);
  report.elapsed_us = monotonic_us() - started;
  report.user_us = usage.ru_utime.tv_sec * 1'000'000 + usage.ru_utime.tv_usec;
  report.system_us = usage.ru_stime.tv_sec * 1'000'000 + usage.ru_stime.tv_usec;
  report.max_rss_kb = usage.ru_maxrss;
}

}  // namespace

void locate_own_args(NativeArgs& native) {
  std::ifstream in("/proc/self/stat");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = all.rfind(')');
  if (close == std::string::npos) return;
  std::istringstream fields(all.substr(close + 2));
  std::string field;
  // After "pid (comm) " come fields 3...; arg_start..env_end are fields 48-51 (proc(5)).
  for (int index = 3; index < 48 && fields >> field; ++index) {}
  unsigned long values[4] = {};
  for (auto& value : values) {
    if (!(fields >> value)) return;
  }
  native.arg_start = values[0];
  native.arg_end = values[1];
  native.env_start = values[2];
  native.env_end = values[3];
}

unsigned long native_clone_flags(const NativeArgs& native) noexcept {
  unsigned long flags = CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS;
  if (native.template_fd < 0) flags |= CLONE_NEWNS;
  if (native.netns_fd < 0 && !native.host_network) flags |= CLONE_NEWNET;
  if (native.user_namespace) flags |= CLONE_NEWUSER;
  return flags;
}

const char* to_string(InitStep step) noexcept {
  switch (step) {
    case InitStep::none: return "none";
    case InitStep::close_fds: return "close inherited descriptors";
    case InitStep::wait_for_maps: return "wait for uid/gid maps";
    case InitStep::build_root: return "build the root file system";
    case InitStep::hostname: return "set the hostname";
    case InitStep::network: return "join the network namespace";
    case InitStep::cgroup: return "join the cgroups";
    case InitStep::rlimits: return "set rlimits";
    case InitStep::stdio: return "connect stdin/stdout/stderr";
    case InitStep::drop_privileges: return "drop privileges";
    case InitStep::no_new_privs: return "set no_new_privs";
    case InitStep::seccomp: return "load the seccomp filter";
    case InitStep::signals: return "watch SIGCHLD";
    case InitStep::fork_command: return "start the command";
    case InitStep::supervise: return "supervise the command";
  }
  return "unknown";
}

void run_init_in_child(const ChildArgs& args, const NativeArgs& native, int maps_ready_fd) noexcept {
  ChildReport report{};
  const std::int64_t started = monotonic_us();
  // 1. Hold nothing of the server's but what the sandbox needs; leave its session.
  leave_server_in_child(args, native, maps_ready_fd, report);
  // 2. Still privileged: the sandbox around us, then no privilege left.
  contain_in_child(args, native, report);
  lock_down_in_child(args, native, report);
  // 3. The command, as PID 2, supervised until it is over; then nothing of the sandbox is left.
  const int sigfd = watch_children_in_child(args, report);
  const pid_t command = start_pid2_in_child(args, report);
  if (report.exec_errno == 0) report.running_us = monotonic_us();
  supervise_command_in_child(args, command, sigfd, started, report);
  end_namespace_in_child(command, started, report);
  write_all(args.report_fd, &report, sizeof report);
  ::_exit(0);
}

}  // namespace pagi_exec::sys
