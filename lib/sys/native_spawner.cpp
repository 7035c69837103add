// SPDX-License-Identifier: Apache-2.0
// The native spawner: what is made once (root plan, template namespace, pools of network
// namespaces, cgroups and uids, seccomp filter) and what each execution adds (a fresh network
// namespace, a cgroup lease, a uid, its workspace's detached mount).
#include <unistd.h>

#include <optional>

#include "pagi_exec/spawner.hpp"
#include "sys/cgroup.hpp"
#include "sys/id_pool.hpp"
#include "sys/janitor.hpp"
#include "sys/mountns.hpp"
#include "sys/native.hpp"
#include "sys/netns.hpp"
#include "sys/process_spawner.hpp"
#include "sys/seccomp.hpp"
#include "sys/spawn.hpp"

namespace pagi_exec::sys {
namespace {

// Network namespaces kept ready: enough for a burst of executions; past it a run creates its own.
constexpr std::size_t spare_network_namespaces = 8;

// What a root server holds for native runs; a user-namespaced one has none of it.
struct Privileged {
  unique_fd template_ns;                 // the mount namespace runs copy
  std::unique_ptr<NetnsPool> netns;      // fresh loopback-only namespaces
  std::shared_ptr<CgroupPool> cgroups;   // null: no usable cgroups, memory capped by RLIMIT_AS
  std::shared_ptr<IdPool> ids;           // null: every run is sandbox_uid/sandbox_gid
  std::uint32_t workspace_gid = 0;       // the group that may read twins' folders (the pool's first id)
};

class NativeSpawner final : public Spawner {
 public:
  NativeSpawner(const Sandbox& sandbox, RootPlan root, Privileged privileged, SeccompProgram seccomp,
                bool user_namespace)
      : uid_(sandbox.spec().sandbox_uid),
        gid_(sandbox.spec().sandbox_gid),
        root_(std::move(root)),
        held_(std::move(privileged)),
        seccomp_(std::move(seccomp)),
        user_namespace_(user_namespace) {
    locate_own_args(identity_);
  }

  Result<ProcessResult> spawn(const LaunchPlan& plan, std::stop_token stop, const OutputSink& sink) const override {
    if (plan.isolation != Isolation::native) return others_.spawn(plan, std::move(stop), sink);
    const auto workspace = plan.workspace.string();
    // The workspace as a detached read-only mount, made here while privileged: the run's mount
    // namespace then holds this one folder and no path to the sandbox dir.
    unique_fd tree;
    if (held_.template_ns) {
      auto opened = open_workspace_tree(workspace);
      if (!opened) return tl::unexpected(opened.error());
      tree = std::move(*opened);
    }
    // A network namespace no other run has used (discarded after this one), unless granted the host's.
    unique_fd netns;
    if (!plan.network && held_.netns) netns = held_.netns->take();
    // A uid of its own: per-uid kernel limits are then this run's alone.
    IdLease id;
    if (held_.ids) {
      auto lent = held_.ids->acquire();
      if (!lent) return tl::unexpected(lent.error());
      id = std::move(*lent);
    }
    const std::uint32_t uid = id ? id.id() : uid_, gid = id ? id.id() : gid_;
    const auto work_options = work_options_for(root_, uid, gid);
    NativeArgs args{.root = &root_, .template_fd = held_.template_ns.get(), .workspace_tree = tree.get(),
                    .workspace = workspace.c_str(), .work_options = work_options.c_str(), .netns_fd = netns.get(),
                    .host_network = plan.network, .uid = uid, .gid = gid,
                    .workspace_gid = id ? held_.workspace_gid : 0, .seccomp = &seccomp_,
                    .user_namespace = user_namespace_, .memory_by_rlimit = held_.cgroups == nullptr,
                    .arg_start = identity_.arg_start, .arg_end = identity_.arg_end,
                    .env_start = identity_.env_start, .env_end = identity_.env_end};
    std::optional<CgroupLease> lease;
    if (held_.cgroups) {
      auto acquired =
          held_.cgroups->acquire({.memory_bytes = plan.limits.memory_bytes, .max_pids = plan.limits.max_processes});
      if (!acquired) return tl::unexpected(acquired.error());
      lease = std::move(*acquired);
      for (std::size_t i = 0; i < lease->procs.size() && i < 2; ++i) args.cgroup_procs[i] = lease->procs[i].get();
    }
    auto result = run_process_tree(plan, {.native = &args, .cgroup = lease ? &*lease : nullptr}, cleanup_,
                                   std::move(stop), sink);
    if (lease) add_cgroup_usage(result, held_.cgroups->read_usage(*lease));
    // The cgroup and the uid go back only after the init's reap, which run_process_tree queued
    // first: when the init (PID 1 of the run's PID namespace) is reaped, no process of the run
    // is left (pid_namespaces(7)), so nothing runs under the uid when the next run gets it.
    if (lease || id) {
      auto held_lease = std::make_shared<std::optional<CgroupLease>>(std::move(lease));
      auto held_id = std::make_shared<IdLease>(std::move(id));
      cleanup_.post([pool = held_.cgroups, held_lease, held_id] {
        if (*held_lease) pool->recycle(std::move(**held_lease));
        held_id->reset();
      });
    }
    return result;  // the network namespace's descriptor closes here: it is never reused
  }

  void wait_for_cleanup() const override {
    others_.wait_for_cleanup();
    cleanup_.drain();
  }

 private:
  std::uint32_t uid_, gid_;
  RootPlan root_;
  Privileged held_;
  SeccompProgram seccomp_;
  bool user_namespace_;
  NativeArgs identity_;  // only the server's argv/environ areas are used
  ProcessSpawner others_;    // runs the plans of other kinds
  mutable Janitor cleanup_;  // last member: drained and joined before the pools go
};

Result<Privileged> make_privileged(const SandboxSpec& spec, const RootPlan& root) {
  Privileged held;
  auto made_template = make_template_namespace(root);
  if (!made_template) return tl::unexpected(made_template.error());
  held.template_ns = std::move(*made_template);
  auto netns = NetnsPool::make(spare_network_namespaces);
  if (!netns) return tl::unexpected(netns.error());
  held.netns = std::move(*netns);
  // Without cgroups memory falls back to RLIMIT_AS and processes are not limited as a tree:
  // acceptable for a developer machine, reported in the spawner's description.
  if (auto made = CgroupPool::make()) held.cgroups = std::move(*made);
  if (spec.native_ids.count != 0) {
    auto ids = IdPool::make(spec.native_ids.first + 1, spec.native_ids.count - 1);
    if (!ids) return tl::unexpected(ids.error());
    held.ids = std::move(*ids);
    held.workspace_gid = spec.native_ids.first;
  }
  return held;
}

}  // namespace
}  // namespace pagi_exec::sys

namespace pagi_exec {

Result<std::shared_ptr<const Spawner>> make_native_spawner(const Sandbox& sandbox) {
  const auto& spec = sandbox.spec();
  // Root sets up namespaces directly; anyone else needs a user namespace, and then gets a
  // network namespace of its own per execution (joining ours would need our privileges). A
  // user namespace maps one uid only (ours), so there is no uid pool either.
  const bool user_namespace = ::geteuid() != 0;
  auto root = sys::plan_root((spec.root_dir / ".native-root").string(), spec.limits.tmpfs_bytes,
                             spec.limits.tmpfs_bytes, spec.sandbox_uid, spec.sandbox_gid,
                             user_namespace ? IdRange{} : spec.native_ids);
  if (!root) return tl::unexpected(root.error());
  sys::Privileged held;
  if (!user_namespace) {
    auto made = sys::make_privileged(spec, *root);
    if (!made) return tl::unexpected(made.error());
    held = std::move(*made);
  }
  auto seccomp = sys::SeccompProgram::make_default();
  if (!seccomp) return tl::unexpected(seccomp.error());
  return std::make_shared<const sys::NativeSpawner>(sandbox, std::move(*root), std::move(held), std::move(*seccomp),
                                                    user_namespace);
}

}  // namespace pagi_exec
