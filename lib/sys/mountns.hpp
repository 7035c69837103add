// SPDX-License-Identifier: Apache-2.0
// The native sandbox's root file system: planned in the parent, built in the child.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pagi_exec/error.hpp"
#include "pagi_exec/sandbox.hpp"
#include "sys/unique_fd.hpp"

namespace pagi_exec::sys {

/// A top-level system folder programs need, as this host has it: merged-/usr systems (Debian
/// 12) have /bin, /lib, ... as links into /usr; others have real folders.
struct SystemDir {
  std::string path;         ///< "/bin"
  std::string link_target;  ///< "usr/bin" when `path` is a symlink, else empty (a folder)
};
/// /bin, /sbin, /lib, /lib32, /lib64, /libx32 as they exist here (missing ones left out).
[[nodiscard]] std::vector<SystemDir> system_dirs();

/// Everything the child needs to build the root, as ready-made strings (the child may not
/// allocate). Made once per native spawner by plan_root(); only the workspace differs per execution.
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
  std::string work_options;         ///< tmpfs options of /work (size cap); work_options_for() adds the owner
  std::string proc, dev, tmp, work, workspace;  ///< mount points under `root`
};

/// The tmpfs options of one execution's /work: the plan's size cap, owned by uid/gid.
[[nodiscard]] std::string work_options_for(const RootPlan& plan, std::uint32_t uid, std::uint32_t gid);

/// Plans the root: read-only /usr (and /bin, /lib*, /sbin as links or binds), a fresh /proc, a
/// minimal /dev, size-capped /tmp and /work tmpfs, the twin's workspace read-only at /workspace,
/// and in /etc only ld.so.cache, nsswitch.conf, localtime, alternatives and a generated
/// passwd/group naming the sandbox user (uid/gid, and every id of `ids`, all called "sandbox").
/// Errc::sandbox_setup when `root` cannot be created.
[[nodiscard]] Result<RootPlan> plan_root(const std::string& root, std::uint64_t tmp_bytes, std::uint64_t work_bytes,
                                         std::uint32_t uid, std::uint32_t gid, const IdRange& ids);

/// Steps of building the root, for error messages.
enum class RootStep : std::int32_t {
  none = 0, make_private, mount_root, make_dirs, bind_system, make_links, write_files, make_devices,
  mount_proc, mount_tmp, mount_work, bind_workspace, pivot_root, remount_root_readonly,
  enter_template, unshare_mounts,
};
[[nodiscard]] const char* to_string(RootStep step) noexcept;

/// Where building the root failed, as the child reports it: the step and, for a step over one of
/// the plan's lists (dirs, ro_binds, links, files, the /dev nodes), the index of the entry.
struct RootFailure {
  RootStep step = RootStep::none;
  std::int32_t item = 0;
  [[nodiscard]] explicit operator bool() const noexcept { return step != RootStep::none; }
};

/// The failed operation and the path it failed on, as bubblewrap names them: "mount proc on
/// /srv/sandbox/.native-root/proc", "bind /usr on /srv/sandbox/.native-root/usr read-only".
/// `from_template`: the per-execution mounts were made inside the template's root (paths such
/// as /proc); `workspace`: the host folder bound at /workspace without a template.
[[nodiscard]] std::string describe(const RootPlan& plan, RootFailure failure, bool from_template,
                                   const std::string& workspace = {});

/// Makes the template mount namespace native executions start from: everything of the plan that
/// is the same for every execution (root tmpfs, read-only system binds, /etc files, /dev),
/// pivoted into and made read-only. No host folder of the sandbox dir is in it. Returns a
/// descriptor of the namespace (kept alive by it). Needs CAP_SYS_ADMIN. Copying this small tree
/// per execution is much cheaper than building it. Errc::sandbox_setup, naming the step and path
/// that failed.
[[nodiscard]] Result<unique_fd> make_template_namespace(const RootPlan& plan);

/// Parent side: a detached, read-only, nosuid, nodev copy of the mount of `dir` (a twin's
/// workspace), rooted at `dir`, as a descriptor (open_tree(2) with OPEN_TREE_CLONE). The
/// execution attaches it at /workspace, so its mount namespace never holds the sandbox dir or
/// another twin's folder. Closing the descriptor before it is attached dissolves it.
/// Needs CAP_SYS_ADMIN, Linux 5.12 (mount_setattr). Errc::sandbox_setup.
[[nodiscard]] Result<unique_fd> open_workspace_tree(const std::string& dir);

/// In the child, inside a new PID namespace, still privileged: enters a private copy of the
/// template namespace, mounts a fresh /proc, size-capped /tmp and /work (`work_options`), and
/// attaches `workspace_tree` (from open_workspace_tree) at /workspace. Async-signal-safe.
[[nodiscard]] RootFailure enter_template_in_child(int template_fd, const RootPlan& plan, int workspace_tree,
                                               const char* work_options) noexcept;

/// In the child, inside new mount and PID namespaces (a user namespace, where the template
/// cannot be joined): builds the whole planned root over plan.root, binds the host folder
/// `workspace` read-only at /workspace, pivots into it and detaches the old root, so no host
/// path stays reachable. Async-signal-safe.
[[nodiscard]] RootFailure build_root_in_child(const RootPlan& plan, const char* workspace,
                                              const char* work_options) noexcept;

}  // namespace pagi_exec::sys
