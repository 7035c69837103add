// SPDX-License-Identifier: Apache-2.0
// The native sandbox's root file system: planned in the parent, built in the child.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pagi_exec/error.hpp"

namespace pagi_exec::sys {

/// Everything the child needs to build the root, as ready-made strings (the child may not
/// allocate). Made once per Executor by plan_root(); only the workspace differs per execution.
struct RootPlan {
  struct Bind {
    std::string source;
    std::string target;          ///< under `root`
    unsigned long extra_flags;   ///< flags the source mount already has (kept: a user namespace may not drop them)
  };
  struct Link {
    std::string target;  ///< what the link points to
    std::string path;    ///< under `root`
  };
  struct File {
    std::string path;  ///< under `root`
    std::string content;
  };
  std::string root;                 ///< host folder the new root's tmpfs is mounted on
  std::vector<std::string> dirs;    ///< created in the new root, in order
  std::vector<Bind> ro_binds;       ///< system folders, read-only
  std::vector<Link> links;          ///< merged-/usr links, /dev/fd, ...
  std::vector<File> files;          ///< the few /etc files, with generated passwd and group
  std::string root_options;         ///< tmpfs options of / (small, holds /etc and mount points)
  std::string tmp_options;          ///< tmpfs options of /tmp (size cap)
  std::string work_options;         ///< tmpfs options of /work (size cap, owned by the sandbox uid)
  std::string proc, dev, tmp, work, workspace;  ///< mount points under `root`
};

/// Plans the root: read-only /usr (and /bin, /lib*, /sbin as links or binds), a fresh /proc, a
/// minimal /dev, size-capped /tmp and /work tmpfs, the twin's workspace read-only at /workspace,
/// and in /etc only ld.so.cache, nsswitch.conf, localtime, alternatives and a generated
/// passwd/group naming the sandbox user. Errc::sandbox_setup when `root` cannot be created.
[[nodiscard]] Result<RootPlan> plan_root(const std::string& root, std::uint64_t tmp_bytes, std::uint64_t work_bytes,
                                         std::uint32_t uid, std::uint32_t gid);

/// Steps of building the root, for error messages.
enum class RootStep : std::int32_t {
  none = 0, make_private, mount_root, make_dirs, bind_system, make_links, write_files, make_devices,
  mount_proc, mount_tmp, mount_work, bind_workspace, pivot_root, remount_root_readonly,
};
[[nodiscard]] const char* to_string(RootStep step) noexcept;

/// In the child, inside new mount and PID namespaces: builds the planned root over plan.root,
/// binds `workspace` read-only at /workspace, pivots into it and detaches the old root, so no
/// host path stays reachable. Returns the failed step (errno set) or RootStep::none.
/// Async-signal-safe.
[[nodiscard]] RootStep build_root_in_child(const RootPlan& plan, const char* workspace) noexcept;

}  // namespace pagi_exec::sys
