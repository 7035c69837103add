// SPDX-License-Identifier: Apache-2.0
// The native sandbox's first process ("init"): containment checklist, then the command, which
// it supervises as PID 1 of the sandbox's PID namespace.
#pragma once

#include <cstdint>

#include "sys/mountns.hpp"
#include "sys/supervisor.hpp"

namespace pagi_exec::sys {

class SeccompProgram;

/// Everything the native init needs besides ChildArgs, prepared in the parent.
struct NativeArgs {
  const RootPlan* root = nullptr;
  int template_fd = -1;               ///< template mount namespace; -1: build the root (user namespace)
  int workspace_tree = -1;            ///< with the template: the workspace's detached mount
  const char* workspace = nullptr;    ///< without: the host path of the workspace
  const char* work_options = nullptr; ///< tmpfs options of /work (its owner is the run's uid)
  int netns_fd = -1;                  ///< this run's fresh loopback-only namespace; -1: a new one
  bool host_network = false;          ///< the policy grants network: stay in the host's namespace
  int cgroup_procs[2] = {-1, -1};     ///< cgroup.procs to join (v1: memory, pids), -1 unused
  std::uint32_t uid = 65534;          ///< the command's uid and gid
  std::uint32_t gid = 65534;
  std::uint32_t workspace_gid = 0;    ///< a supplementary group that may read the workspace; 0: none
  const SeccompProgram* seccomp = nullptr;  ///< loaded last, before the command starts
  bool user_namespace = false;        ///< not root: a user namespace maps uid/gid
  bool memory_by_rlimit = false;      ///< no cgroup: cap memory with RLIMIT_AS instead
  /// The server's argv and environment areas (from /proc/self/stat), which the init inherits
  /// and blanks so /proc/1/cmdline inside shows no host path. 0: unknown.
  unsigned long arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;
};

/// Reads this process's argv and environment areas from /proc/self/stat into `native`.
void locate_own_args(NativeArgs& native);

/// Clone flags of the init: every namespace but the network one it joins (or creates), and the
/// mount one, which it copies from the template.
[[nodiscard]] unsigned long native_clone_flags(const NativeArgs& native) noexcept;

/// Steps of the containment checklist, for error messages.
enum class InitStep : std::int32_t {
  none = 0, close_fds, wait_for_maps, build_root, hostname, network, cgroup, rlimits, stdio, drop_privileges,
  no_new_privs, seccomp, signals, fork_command, supervise,
};
[[nodiscard]] const char* to_string(InitStep step) noexcept;

/// Runs as PID 1 of new PID, IPC and UTS namespaces, cloned straight from the server. Builds
/// the root, joins the network namespace and the cgroups, applies rlimits, drops to uid/gid
/// with no capabilities, sets no_new_privs and the seccomp filter, starts the command, then
/// supervises it: the time limit, the control pipe (EOF: the caller went away or the server
/// died) and reaping every orphan. Kills what is left, writes one ChildReport and exits; the
/// kernel then kills anything else of the namespace (pid_namespaces(7)). `maps_ready_fd` is
/// read to EOF first when a user namespace is used. Never returns. Async-signal-safe.
[[noreturn]] void run_init_in_child(const ChildArgs& args, const NativeArgs& native, int maps_ready_fd) noexcept;

}  // namespace pagi_exec::sys
