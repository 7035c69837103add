// SPDX-License-Identifier: Apache-2.0
// The native spawner: what is made once (root plan, network namespace, cgroup pool, seccomp
// filter) and what each execution adds (a cgroup lease, its workspace).
#include <linux/filter.h>
#include <unistd.h>

#include <optional>

#include "pagi_exec/spawner.hpp"
#include "sys/cgroup.hpp"
#include "sys/janitor.hpp"
#include "sys/mountns.hpp"
#include "sys/native.hpp"
#include "sys/netns.hpp"
#include "sys/seccomp.hpp"
#include "sys/spawn.hpp"

namespace pagi_exec::sys {
namespace {

class NativeSpawner final : public Spawner {
 public:
  NativeSpawner(const Sandbox& sandbox, RootPlan root, unique_fd template_ns, unique_fd netns,
                std::shared_ptr<CgroupPool> pool, SeccompProgram seccomp, bool user_namespace)
      : uid_(sandbox.spec().sandbox_uid),
        gid_(sandbox.spec().sandbox_gid),
        root_(std::move(root)),
        template_ns_(std::move(template_ns)),
        netns_(std::move(netns)),
        pool_(std::move(pool)),
        seccomp_(std::move(seccomp)),
        fprog_(seccomp_.fprog()),
        user_namespace_(user_namespace) {
    locate_own_args(identity_);
  }

  Result<ProcessResult> spawn(const LaunchPlan& plan, std::stop_token stop, const OutputSink& sink) const override {
    if (plan.isolation != Isolation::native) return make_process_spawner()->spawn(plan, std::move(stop), sink);
    // With the template the workspace is reached through its bind of the sandbox dir.
    const auto workspace = template_ns_ ? template_path_of(plan.workspace.filename().string()) : plan.workspace.string();
    NativeArgs args{.root = &root_, .template_fd = template_ns_.get(), .workspace = workspace.c_str(),
                    .netns_fd = netns_.get(), .host_network = plan.network,
                    .uid = uid_, .gid = gid_, .seccomp = &fprog_, .user_namespace = user_namespace_,
                    .memory_by_rlimit = pool_ == nullptr, .arg_start = identity_.arg_start,
                    .arg_end = identity_.arg_end, .env_start = identity_.env_start, .env_end = identity_.env_end};
    std::optional<CgroupLease> lease;
    if (pool_) {
      auto acquired = pool_->acquire({.memory_bytes = plan.limits.memory_bytes, .max_pids = plan.limits.max_processes});
      if (!acquired) return tl::unexpected(acquired.error());
      lease = std::move(*acquired);
      for (std::size_t i = 0; i < lease->procs.size() && i < 2; ++i) args.cgroup_procs[i] = lease->procs[i].get();
    }
    auto result = run_process_tree(plan, {.native = &args, .cgroup = lease ? &*lease : nullptr}, std::move(stop), sink);
    if (lease) {
      const auto usage = pool_->read_usage(*lease);
      if (result) {
        result->oom_killed = usage.oom_killed;
        result->pids_limit_hit = usage.pids_limit_hit;
        result->usage.peak_memory_bytes = usage.peak_memory_bytes;
      }
      // After the init's reap, which run_process_tree queued first.
      auto held = std::make_shared<CgroupLease>(std::move(*lease));
      Janitor::instance().post([pool = pool_, held] { pool->recycle(std::move(*held)); });
    }
    return result;
  }

 private:
  std::uint32_t uid_, gid_;
  RootPlan root_;
  unique_fd template_ns_;  // invalid in a user namespace: each init builds the whole root
  unique_fd netns_;
  std::shared_ptr<CgroupPool> pool_;  // null: no usable cgroups, memory capped by RLIMIT_AS
  SeccompProgram seccomp_;
  sock_fprog fprog_;  // points into seccomp_
  bool user_namespace_;
  NativeArgs identity_;  // only the server's argv/environ areas are used
};

}  // namespace
}  // namespace pagi_exec::sys

namespace pagi_exec {

Result<std::shared_ptr<const Spawner>> make_native_spawner(const Sandbox& sandbox) {
  const auto& spec = sandbox.spec();
  // Root sets up namespaces directly; anyone else needs a user namespace, and then gets a
  // network namespace of its own per execution (joining ours would need our privileges).
  const bool user_namespace = ::geteuid() != 0;
  auto root = sys::plan_root((spec.root_dir / ".native-root").string(), spec.limits.tmpfs_bytes,
                             spec.limits.tmpfs_bytes, spec.sandbox_uid, spec.sandbox_gid);
  if (!root) return tl::unexpected(root.error());
  sys::unique_fd netns, template_ns;
  if (!user_namespace) {
    auto made = sys::make_loopback_netns();
    if (!made) return tl::unexpected(made.error());
    netns = std::move(*made);
    auto made_template = sys::make_template_namespace(*root, spec.root_dir.string());
    if (!made_template) return tl::unexpected(made_template.error());
    template_ns = std::move(*made_template);
  }
  std::shared_ptr<sys::CgroupPool> pool;
  if (!user_namespace) {
    // Without cgroups memory falls back to RLIMIT_AS and processes are not limited as a tree:
    // acceptable for a developer machine, reported in the spawner's description.
    if (auto made = sys::CgroupPool::make()) pool = std::move(*made);
  }
  auto seccomp = sys::SeccompProgram::make_default();
  if (!seccomp) return tl::unexpected(seccomp.error());
  return std::make_shared<const sys::NativeSpawner>(sandbox, std::move(*root), std::move(template_ns),
                                                    std::move(netns), std::move(pool),
                                                    std::move(*seccomp), user_namespace);
}

}  // namespace pagi_exec
