// SPDX-License-Identifier: Apache-2.0
// The native spawner: what is made once (root plan, template namespace, pools of network
// namespaces, cgroups and uids, seccomp filter) and what each execution adds (a fresh network
// namespace, a cgroup lease, a uid, its workspace's detached mount).
#include <unistd.h>

#include <optional>
#include <string>

#include "egress/proxy.hpp"
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
#include "sys/tree_wire.hpp"

namespace pagi_exec::sys {
namespace {

// Network namespaces kept ready: enough for a burst of executions; past it a run creates its own.
constexpr std::size_t spare_network_namespaces = 8;

// What a root server holds for native runs; a user-namespaced one has none of it.
struct Privileged {
  unique_fd template_ns;                 // the mount namespace runs copy
  std::unique_ptr<NetnsPool> netns;      // loopback-only namespaces, fresh or a twin's own
  std::shared_ptr<CgroupPool> cgroups;   // null: no usable cgroups, memory capped by RLIMIT_AS
  std::shared_ptr<IdPool> ids;           // null: every run is sandbox_uid/sandbox_gid
  std::uint32_t workspace_gid = 0;       // the group that may read twins' folders (the pool's first id)
  std::unique_ptr<egress::Proxy> proxy;  // serves the runs of egress twins, one listener each
};

class NativeSpawner final : public Spawner {
 public:
  NativeSpawner(const Sandbox& sandbox, RootPlan root, Privileged privileged, SeccompProgram seccomp,
                unique_fd sealed_plan, bool user_namespace)
      : uid_(sandbox.spec().sandbox_uid),
        gid_(sandbox.spec().sandbox_gid),
        root_(std::move(root)),
        held_(std::move(privileged)),
        seccomp_(std::move(seccomp)),
        sealed_plan_(std::move(sealed_plan)),
        user_namespace_(user_namespace) {
    locate_own_args(identity_);
  }

  Result<ProcessResult> spawn(const LaunchPlan& plan, std::stop_token stop, const OutputSink& sink) const override {
    if (plan.isolation != Isolation::native) return others_.spawn(plan, std::move(stop), sink);
    auto run = acquire_for_run(plan);
    if (!run) return error_of(run);
    const NativeArgs args = args_for(plan, *run);
    const CgroupLease* cgroup = run->cgroup ? &*run->cgroup : nullptr;
    auto result = run_process_tree(plan, {.native = &args, .cgroup = cgroup, .native_plan = sealed_plan_.get()},
                                   cleanup_, std::move(stop), sink);
    if (cgroup != nullptr) add_cgroup_usage(result, held_.cgroups->read_usage(*cgroup));
    // Every process of the run is gone: its connections close, and their records are written,
    // before the answer (and before the namespace can go to the twin's next run).
    if (run->egress) {
      const auto egress = run->egress->finish();
      if (result) result->egress = egress;
    }
    give_back_after_reap(std::move(run->cgroup), std::move(run->id), plan.workspace.string(), std::move(run->netns));
    return result;
  }

  void wait_for_cleanup() const override {
    others_.wait_for_cleanup();
    cleanup_.drain();
  }

 private:
  // What one run gets for itself, made or lent here while privileged.
  struct PerRun {
    std::string workspace;           // the twin's folder on the host
    unique_fd workspace_tree;        // template: that folder as a detached read-only mount
    unique_fd netns;                 // a network namespace no other twin has used
    IdLease id;                      // a uid of its own: per-uid kernel limits are then this run's alone
    std::optional<CgroupLease> cgroup;
    std::string work_options;        // /work's tmpfs options, owned by the run's uid
    std::optional<egress::Proxy::Session> egress;  // network = egress: the proxy's listener in `netns`
  };

  Result<PerRun> acquire_for_run(const LaunchPlan& plan) const {
    PerRun run;
    run.workspace = plan.workspace.string();
    // The run's mount namespace then holds this one folder and no path to the sandbox dir.
    if (held_.template_ns) {
      auto tree = open_workspace_tree(run.workspace);
      if (!tree) return error_of(tree);
      run.workspace_tree = std::move(*tree);
    }
    // Discarded after this run, unless the run is granted the host's network.
    if (plan.network != NetworkAccess::host && held_.netns) run.netns = held_.netns->take(plan.workspace.string());
    if (plan.network == NetworkAccess::egress) {
      auto served = serve_egress(plan, run.netns);
      if (!served) return error_of(served);
      run.egress.emplace(std::move(*served));
    }
    if (held_.ids) {
      auto lent = held_.ids->acquire();
      if (!lent) return error_of(lent);
      run.id = std::move(*lent);
    }
    if (held_.cgroups) {
      auto acquired =
          held_.cgroups->acquire({.memory_bytes = plan.limits.memory_bytes, .max_pids = plan.limits.max_processes});
      if (!acquired) return error_of(acquired);
      run.cgroup = std::move(*acquired);
    }
    run.work_options = work_options_for(root_, uid_of(run), gid_of(run));
    return run;
  }

  // The run's way out: a namespace in hand (the pool's, or one made now: a run that made its own
  // at clone time would have nowhere for the proxy to listen), the proxy listening inside it.
  Result<egress::Proxy::Session> serve_egress(const LaunchPlan& plan, unique_fd& netns) const {
    if (!held_.proxy) {
      return fail(Errc::sandbox_setup, "network = \"egress\" needs the server to run as root: the egress proxy "
                                       "listens inside each run's network namespace, which a server in a user "
                                       "namespace cannot enter; run it as root, or give the twin network = \"none\"");
    }
    if (!netns) {
      auto made = make_netns_now();
      if (!made) return error_of(made);
      netns = std::move(*made);
    }
    auto listener = listen_in_netns(netns.get(), egress_proxy_port);
    if (!listener) return error_of(listener);
    return held_.proxy->serve(std::move(*listener), {.allow = plan.allow_domains, .deny = plan.deny_domains},
                              plan.twin_id, plan.execution_id);
  }

  [[nodiscard]] std::uint32_t uid_of(const PerRun& run) const noexcept { return run.id ? run.id.id() : uid_; }
  [[nodiscard]] std::uint32_t gid_of(const PerRun& run) const noexcept { return run.id ? run.id.id() : gid_; }

  // The init's arguments: pointers into `run` and this spawner, which outlive the run.
  NativeArgs args_for(const LaunchPlan& plan, const PerRun& run) const {
    NativeArgs args{.root = &root_, .template_fd = held_.template_ns.get(), .workspace_tree = run.workspace_tree.get(),
                    .workspace = run.workspace.c_str(), .work_options = run.work_options.c_str(),
                    .netns_fd = run.netns.get(), .host_network = plan.network == NetworkAccess::host, .uid = uid_of(run), .gid = gid_of(run),
                    .workspace_gid = run.id ? held_.workspace_gid : 0, .seccomp = &seccomp_,
                    .user_namespace = user_namespace_, .memory_by_rlimit = held_.cgroups == nullptr,
                    .arg_start = identity_.arg_start, .arg_end = identity_.arg_end,
                    .env_start = identity_.env_start, .env_end = identity_.env_end};
    if (run.cgroup) {
      for (std::size_t i = 0; i < run.cgroup->procs.size() && i < 2; ++i) {
        args.cgroup_procs[i] = run.cgroup->procs[i];
      }
    }
    return args;
  }

  // The cgroup, the uid and the network namespace go back only after the init's reap, which
  // run_process_tree queued first: when the init (PID 1 of the run's PID namespace) is reaped, no
  // process of the run is left (pid_namespaces(7)), so nothing runs under the uid, and nothing can
  // open a socket in the namespace, when the next run gets them. The namespace is kept for the
  // same twin only (its workspace is the key: no two twins share one).
  void give_back_after_reap(std::optional<CgroupLease> cgroup, IdLease id, std::string twin_key,
                            unique_fd netns) const {
    if (!cgroup && !id && !netns) return;
    auto held_cgroup = std::make_shared<std::optional<CgroupLease>>(std::move(cgroup));
    auto held_id = std::make_shared<IdLease>(std::move(id));
    auto held_netns = std::make_shared<unique_fd>(std::move(netns));
    cleanup_.post([pool = held_.cgroups, netns_pool = held_.netns.get(), held_cgroup, held_id, held_netns,
                   twin_key = std::move(twin_key)] {
      if (*held_cgroup) pool->recycle(std::move(**held_cgroup));
      held_id->reset();
      if (*held_netns) netns_pool->give_back(twin_key, std::move(*held_netns));
    });
  }

  std::uint32_t uid_, gid_;
  RootPlan root_;
  Privileged held_;
  SeccompProgram seccomp_;
  unique_fd sealed_plan_;  // root_ and seccomp_ for the spawn helper, sent with every run
  bool user_namespace_;
  NativeArgs identity_;  // only the server's argv/environ areas are used
  ProcessSpawner others_;    // runs the plans of other kinds
  mutable Janitor cleanup_;  // last member: drained and joined before the pools go
};

Result<Privileged> make_privileged(const SandboxSpec& spec, const RootPlan& root, EgressRecorder egress_recorder) {
  Privileged held;
  auto proxy = egress::Proxy::make(spec.egress, [recorder = std::move(egress_recorder)](const EgressConnection& c) {
    if (recorder) recorder(c);
  });
  if (!proxy) return error_of(proxy);
  held.proxy = std::move(*proxy);
  auto made = make_template_namespace(root).and_then([&](unique_fd template_ns) {
    held.template_ns = std::move(template_ns);
    return NetnsPool::make(spare_network_namespaces);
  });
  if (!made) return error_of(made);
  held.netns = std::move(*made);
  // Without cgroups memory falls back to RLIMIT_AS and processes are not limited as a tree:
  // acceptable for a developer machine.
  if (auto pool = CgroupPool::make()) held.cgroups = std::move(*pool);
  if (spec.native_ids.count != 0) {
    auto ids = IdPool::make(spec.native_ids.first + 1, spec.native_ids.count - 1);
    if (!ids) return error_of(ids);
    held.ids = std::move(*ids);
    held.workspace_gid = spec.native_ids.first;
  }
  return held;
}

}  // namespace
}  // namespace pagi_exec::sys

namespace pagi_exec {

Result<std::shared_ptr<const Spawner>> make_native_spawner(const Sandbox& sandbox, EgressRecorder egress_recorder) {
  const auto& spec = sandbox.spec();
  // Root sets up namespaces directly; anyone else needs a user namespace, and then gets a
  // network namespace of its own per execution (joining ours would need our privileges). A
  // user namespace maps one uid only (ours), so there is no uid pool either.
  const bool user_namespace = ::geteuid() != 0;
  auto root = sys::plan_root((spec.root_dir / ".native-root").string(), spec.limits.tmpfs_bytes,
                             spec.limits.tmpfs_bytes, spec.sandbox_uid, spec.sandbox_gid,
                             user_namespace ? IdRange{} : spec.native_ids);
  if (!root) return error_of(root);
  auto held = user_namespace ? Result<sys::Privileged>() : sys::make_privileged(spec, *root, std::move(egress_recorder));
  if (!held) return error_of(held);
  auto seccomp = sys::SeccompProgram::make_default();
  if (!seccomp) return error_of(seccomp);
  // The helper's copy of the parts every run shares: sent as one descriptor, parsed once there.
  return sys::seal_native_shared(*root, *seccomp).map([&](sys::unique_fd sealed) -> std::shared_ptr<const Spawner> {
    return std::make_shared<const sys::NativeSpawner>(sandbox, std::move(*root), std::move(*held), std::move(*seccomp),
                                                      std::move(sealed), user_namespace);
  });
}

}  // namespace pagi_exec
