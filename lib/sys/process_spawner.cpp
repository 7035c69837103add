// SPDX-License-Identifier: Apache-2.0
// The spawner of cwd and bwrap runs: what is made once (the cgroup pool, the seccomp filter bwrap
// loads) and what each run adds (a cgroup lease, the filter on a pipe).
//
// Why a cgroup for cwd and bwrap too: the supervisor is the one that kills what a command leaves
// behind, and a command that could kill its supervisor (a server that is not root runs commands
// as its own uid; TOOLS_RUN_AS_ROOT) would leave orphans nobody finds. A cgroup holds every
// process of the run whatever it does, so the parent can kill them all from outside
// (run_process_tree); and it caps the run's memory and processes as in native mode. Without
// usable cgroups (an unprivileged server without a delegated subtree) runs go without: the parent
// then kills the command's process group, and only what left it may survive (README says so).
#include "sys/process_spawner.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <optional>

#include "sys/cgroup.hpp"
#include "sys/seccomp.hpp"
#include "sys/spawn.hpp"
#include "sys/unique_fd.hpp"

namespace pagi_exec::sys {
namespace {

// bwrap reads its --seccomp program from a descriptor until EOF: a pipe holding one copy of the
// compiled filter (at most BPF_MAXINSNS * 8 = 32 KiB, within the pipe's 64 KiB buffer, so the
// writes never block), its write end closed. A pipe per run: an offset shared between runs
// (one memfd) would let concurrent bwraps read each other's half.
Result<unique_fd> seccomp_pipe(const SeccompProgram& program) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return fail(Errc::spawn_failed, "pipe2 for the seccomp filter", errno);
  unique_fd read_end(fds[0]);
  unique_fd write_end(fds[1]);
  const sock_fprog prog = program.fprog();
  const auto* data = reinterpret_cast<const char*>(prog.filter);
  std::size_t left = prog.len * sizeof(sock_filter);
  while (left > 0) {
    const auto n = ::write(write_end.get(), data, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail(Errc::spawn_failed, "write the seccomp filter to its pipe", errno);
    data += n;
    left -= static_cast<std::size_t>(n);
  }
  return read_end;
}

}  // namespace

// Without usable cgroups runs go without: memory is then not capped as a tree in cwd/bwrap.
ProcessSpawner::ProcessSpawner() {
  if (auto made = CgroupPool::make()) pool_ = std::move(*made);
}

Result<ProcessResult> ProcessSpawner::spawn(const LaunchPlan& plan, std::stop_token stop,
                                            const OutputSink& sink) const {
  if (plan.isolation == Isolation::native) {
    return fail(Errc::internal, "a native plan needs the native spawner (make_native_spawner)");
  }
  TreeSetup setup;
  unique_fd filter;
  if (plan.seccomp_fd) {
    static const auto program = SeccompProgram::make_default();  // immutable: made once, on first use
    auto made = program.and_then(seccomp_pipe);
    if (!made) return error_of(made);
    filter = std::move(*made);
    setup.fd3 = filter.get();
  }
  std::optional<CgroupLease> lease;
  if (pool_) {
    auto acquired = pool_->acquire({.memory_bytes = plan.limits.memory_bytes, .max_pids = plan.limits.max_processes});
    if (!acquired) return error_of(acquired);
    lease = std::move(*acquired);
    setup.cgroup = &*lease;
  }
  auto result = run_process_tree(plan, setup, cleanup_, std::move(stop), sink);
  if (lease) {
    add_cgroup_usage(result, pool_->read_usage(*lease));
    // After the supervisor's reap, which run_process_tree queued first.
    auto held = std::make_shared<CgroupLease>(std::move(*lease));
    cleanup_.post([pool = pool_, held] { pool->recycle(std::move(*held)); });
  }
  return result;
}

}  // namespace pagi_exec::sys

namespace pagi_exec {
std::shared_ptr<const Spawner> make_process_spawner() { return std::make_shared<const sys::ProcessSpawner>(); }
}  // namespace pagi_exec
