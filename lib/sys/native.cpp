// SPDX-License-Identifier: Apache-2.0
// The native sandbox's init: one checklist, in the order the kernel's rules require.
//
// Order matters:
//  - the root is built while we still hold CAP_SYS_ADMIN, inside the new mount and PID
//    namespaces (a proc mount shows the PID namespace of its mounter);
//  - cgroups are joined and the network namespace entered before privileges are dropped
//    (both need privileges), and rlimits set before too (raising needs CAP_SYS_RESOURCE);
//  - the capability bounding set is cleared before setresuid (PR_CAPBSET_DROP needs
//    CAP_SETPCAP); setresuid to a non-zero uid then clears every capability (capabilities(7));
//  - no_new_privs must precede the seccomp filter (seccomp(2)) and makes setuid binaries inert;
//  - the filter is last: it refuses mount, setns and unshare, which the steps above use.
#include "sys/native.hpp"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <string>

#include "sys/netns.hpp"
#include "sys/rlimits.hpp"
#include "sys/supervisor.hpp"

namespace pagi_exec::sys {
namespace {

// What /proc/1/cmdline shows inside instead of the server's argv.
constexpr char init_name[] = "pagi-exec-init";

void write_report(int fd, const InitReport& report) noexcept {
  const auto* p = reinterpret_cast<const char*>(&report);
  std::size_t left = sizeof report;
  while (left > 0) {
    const auto n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

[[noreturn]] void fail(int report_fd, InitStep step, int err, RootStep root_step = RootStep::none) noexcept {
  InitReport report{};
  report.step = static_cast<std::int32_t>(step);
  report.step_errno = err;
  report.root_step = static_cast<std::int32_t>(root_step);
  write_report(report_fd, report);
  ::_exit(0);
}

// The init is a copy of the server: its argv and environment areas hold the server's command
// line and variables, which /proc/1/cmdline and /proc/1/environ would show. Overwrite our copy
// (PR_SET_MM would need CAP_SYS_RESOURCE, which containers often lack).
void hide_server_identity(const NativeArgs& native) noexcept {
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

bool drop_privileges(const NativeArgs& native) noexcept {
  for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) return false;
  }
  if (!native.user_namespace && ::setgroups(0, nullptr) != 0) return false;
  if (::setresgid(native.gid, native.gid, native.gid) != 0) return false;
  if (::setresuid(native.uid, native.uid, native.uid) != 0) return false;
  // In a user namespace the uid was never 0, so setresuid kept the namespace's capabilities:
  // clear them explicitly (capset(2), version 3 for 64 capability bits).
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capset, &header, data) != 0) return false;
  // After the uid change: nobody inside may read our memory or /proc/1/{environ,mem,maps}.
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  return true;
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
  unsigned long flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS;
  if (native.netns_fd < 0) flags |= CLONE_NEWNET;
  if (native.user_namespace) flags |= CLONE_NEWUSER;
  return flags;
}

const char* to_string(InitStep step) noexcept {
  switch (step) {
    case InitStep::none: return "none";
    case InitStep::wait_for_maps: return "wait for uid/gid maps";
    case InitStep::build_root: return "build the root file system";
    case InitStep::hostname: return "set the hostname";
    case InitStep::network: return "join the network namespace";
    case InitStep::cgroup: return "join the cgroups";
    case InitStep::rename: return "rename the init";
    case InitStep::rlimits: return "set rlimits";
    case InitStep::stdio: return "connect stdin/stdout/stderr";
    case InitStep::drop_privileges: return "drop privileges";
    case InitStep::no_new_privs: return "set no_new_privs";
    case InitStep::seccomp: return "load the seccomp filter";
    case InitStep::fork_command: return "start the command";
  }
  return "unknown";
}

void run_init_in_child(const SupervisorArgs& args, int report_fd, int maps_ready_fd) noexcept {
  const NativeArgs& native = *args.native;
  // 0. Die with the supervisor (which is single-threaded: PDEATHSIG is reliable here).
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (native.user_namespace) {
    char ignored;
    while (::read(maps_ready_fd, &ignored, 1) < 0 && errno == EINTR) {}
  }
  // 1. Still privileged, in the new namespaces: the root, the hostname, the network.
  if (const auto step = build_root_in_child(*native.root, native.workspace); step != RootStep::none) {
    fail(report_fd, InitStep::build_root, errno, step);
  }
  static constexpr char hostname[] = "pagi-sandbox";
  if (::sethostname(hostname, sizeof hostname - 1) != 0) fail(report_fd, InitStep::hostname, errno);
  const int net_err = native.netns_fd >= 0 ? join_netns_in_child(native.netns_fd) : bring_up_loopback_in_child();
  if (net_err != 0) fail(report_fd, InitStep::network, net_err);
  // 2. Join the execution's cgroups ("0" is the writer itself), then hide the host's
  //    cgroup tree behind a cgroup namespace rooted at them.
  for (const int procs : native.cgroup_procs) {
    if (procs >= 0 && ::write(procs, "0", 1) != 1) fail(report_fd, InitStep::cgroup, errno);
  }
  if (::unshare(CLONE_NEWCGROUP) != 0) fail(report_fd, InitStep::cgroup, errno);
  hide_server_identity(native);
  if (const int err = apply_rlimits_in_child(*args.rlimits); err != 0) fail(report_fd, InitStep::rlimits, err);

  // 3. stdio for the command, then nothing else of ours stays open across its exec.
  const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull < 0 || ::dup2(devnull, 0) < 0 || ::dup2(args.stdout_fd, 1) < 0 || ::dup2(args.stderr_fd, 2) < 0 ||
      ::chdir(args.cwd) != 0) {
    fail(report_fd, InitStep::stdio, errno);
  }
  ::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);

  // 4. Give up every privilege, for good.
  if (!drop_privileges(native)) fail(report_fd, InitStep::drop_privileges, errno);
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail(report_fd, InitStep::no_new_privs, errno);
  if (native.seccomp != nullptr &&
      ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, native.seccomp) != 0) {
    fail(report_fd, InitStep::seccomp, errno);
  }

  // 5. The command, as PID 2. vfork: no copy of the server's page tables; the child only execs.
  volatile int exec_errno = 0;
  const pid_t command = ::vfork();
  if (command == 0) {
    ::execve(args.argv[0], const_cast<char* const*>(args.argv), const_cast<char* const*>(args.envp));
    exec_errno = errno;
    ::_exit(127);
  }
  if (command < 0) fail(report_fd, InitStep::fork_command, errno);
  // 6. As PID 1 we reap every orphan of the namespace; the command's status is the report.
  InitReport report{};
  report.exec_errno = exec_errno;
  for (;;) {
    int status = 0;
    const pid_t reaped = ::waitpid(-1, &status, 0);
    if (reaped == command) {
      report.wait_status = status;
      break;
    }
    if (reaped < 0 && errno != EINTR) break;
  }
  rusage usage{};
  ::getrusage(RUSAGE_CHILDREN, &usage);
  report.user_us = usage.ru_utime.tv_sec * 1'000'000 + usage.ru_utime.tv_usec;
  report.system_us = usage.ru_stime.tv_sec * 1'000'000 + usage.ru_stime.tv_usec;
  report.max_rss_kb = usage.ru_maxrss;
  write_report(report_fd, report);
  ::_exit(0);
}

}  // namespace pagi_exec::sys
