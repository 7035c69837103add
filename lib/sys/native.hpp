// SPDX-License-Identifier: Apache-2.0
// The native sandbox's first process ("init"): containment checklist, then the command.
#pragma once

#include <cstdint>

#include "sys/mountns.hpp"

struct sock_fprog;

namespace pagi_exec::sys {

/// Everything the native init needs, prepared in the parent.
struct NativeArgs {
  const RootPlan* root = nullptr;
  const char* workspace = nullptr;    ///< host path of the twin's workspace (bound read-only)
  int netns_fd = -1;                  ///< the shared loopback-only namespace; -1: create one
  int cgroup_procs[2] = {-1, -1};     ///< cgroup.procs to join (v1: memory, pids), -1 unused
  std::uint32_t uid = 65534;          ///< the command's uid and gid
  std::uint32_t gid = 65534;
  const sock_fprog* seccomp = nullptr;
  bool user_namespace = false;        ///< not root: a user namespace maps uid/gid
  bool memory_by_rlimit = false;      ///< no cgroup: cap memory with RLIMIT_AS instead
  /// The server's argv and environment areas (from /proc/self/stat), which the init inherits
  /// and blanks so /proc/1/cmdline inside shows no host path. 0: unknown.
  unsigned long arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;
};

/// Reads this process's argv and environment areas from /proc/self/stat into `native`.
void locate_own_args(NativeArgs& native);

/// Clone flags of the init: every namespace but the network one it joins (or creates).
[[nodiscard]] unsigned long native_clone_flags(const NativeArgs& native) noexcept;

/// Steps of the containment checklist, for error messages.
enum class InitStep : std::int32_t {
  none = 0, wait_for_maps, build_root, hostname, network, cgroup, rename, rlimits, stdio, drop_privileges,
  no_new_privs, seccomp, fork_command,
};
[[nodiscard]] const char* to_string(InitStep step) noexcept;

/// What the init reports to the supervisor: one write, fewer than PIPE_BUF bytes.
struct InitReport {
  std::int32_t step = 0;        ///< InitStep that failed, 0 when the command ran
  std::int32_t step_errno = 0;
  std::int32_t root_step = 0;   ///< RootStep, when step is build_root
  std::int32_t exec_errno = 0;  ///< execve's errno, when the command never ran
  std::int32_t wait_status = 0;
  std::int32_t reserved = 0;
  std::int64_t user_us = 0;     ///< CPU time of every process the init reaped
  std::int64_t system_us = 0;
  std::int64_t max_rss_kb = 0;
};

struct SupervisorArgs;

/// Runs as PID 1 of the new namespaces. Builds the root, joins the network namespace and the
/// cgroups, applies rlimits, drops to uid/gid with no capabilities, sets no_new_privs and the
/// seccomp filter, then starts the command and reaps until it exits. Writes one InitReport to
/// `report_fd` and exits; when PID 1 exits the kernel kills every other process of the
/// namespace (pid_namespaces(7)). `maps_ready_fd` is read to EOF first when a user namespace
/// is used. Never returns. Async-signal-safe.
[[noreturn]] void run_init_in_child(const SupervisorArgs& args, int report_fd, int maps_ready_fd) noexcept;

}  // namespace pagi_exec::sys
