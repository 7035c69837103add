// SPDX-License-Identifier: Apache-2.0
// Parent side of an execution, as a checklist: pipes, the clone of the supervisor (or native
// init; by the spawn helper when one runs), its uid/gid maps, the output pump, the report.
#include "sys/spawn.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sys/c_array.hpp"
#include "sys/cgroup.hpp"
#include "sys/child.hpp"
#include "sys/janitor.hpp"
#include "sys/native.hpp"
#include "sys/pump.hpp"
#include "sys/rlimits.hpp"
#include "sys/spawn_helper.hpp"
#include "sys/supervisor.hpp"
#include "sys/tree_root.hpp"
#include "sys/unique_fd.hpp"
#include "sys/userns.hpp"

namespace pagi_exec::sys {
namespace {

struct Pipe {
  unique_fd read;
  unique_fd write;
};

Result<Pipe> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return fail(Errc::spawn_failed, "pipe2", errno);
  return Pipe{unique_fd(fds[0]), unique_fd(fds[1])};
}

// Every pipe of one tree, parent side and child side: output, the report, the control pipe
// (EOF or a byte: kill it now), the uid/gid-map pipe of a user-namespaced init, and the eventfd
// a stop request rings.
struct TreePipes {
  Pipe out, err, report, control, maps;
  unique_fd wake;

  PumpEnds pump_ends() { return {out.read.get(), err.read.get(), report.read.get(), wake.get(), &control.write}; }
};

bool has_user_namespace(const TreeSetup& setup) noexcept {
  return setup.native != nullptr && setup.native->user_namespace;
}

// Who gets the write ends of the output pipes: the command may reopen its output through
// /dev/stdout (/proc/self/fd/1), which checks the pipe's owner and mode (0600).
std::optional<Credentials> output_owner(const LaunchPlan& plan, const TreeSetup& setup) {
  if (setup.native == nullptr) return plan.run_as;
  if (setup.native->user_namespace) return std::nullopt;  // its uid maps to ours
  return Credentials{setup.native->uid, setup.native->gid};
}

Result<TreePipes> make_tree_pipes(const LaunchPlan& plan, const TreeSetup& setup) {
  TreePipes pipes;
  for (auto* pipe : {&pipes.out, &pipes.err, &pipes.report, &pipes.control}) {
    auto made = make_pipe();
    if (!made) return error_of(made);
    *pipe = std::move(*made);
  }
  if (has_user_namespace(setup)) {  // only a user-namespaced init waits for its maps; EOF releases it
    auto made = make_pipe();
    if (!made) return error_of(made);
    pipes.maps = std::move(*made);
  }
  if (const auto owner = output_owner(plan, setup)) {
    for (const int fd : {pipes.out.write.get(), pipes.err.write.get()}) {
      if (::fchown(fd, owner->uid, owner->gid) != 0) return fail(Errc::spawn_failed, "fchown output pipe", errno);
    }
  }
  pipes.wake.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!pipes.wake) return fail(Errc::spawn_failed, "eventfd", errno);
  return pipes;
}

// What the clone's child reads, prepared before the clone (the child may not allocate); the
// arrays point into the plan, which outlives the clone, and `args` into this object, which
// therefore never moves.
class ChildPlan {
 public:
  ChildPlan(const LaunchPlan& plan, const TreeSetup& setup, const TreePipes& pipes)
      : argv_(c_array(plan.argv)), envp_(c_array(plan.env)), cwd_(plan.cwd.string()) {
    const NativeArgs* native = setup.native;
    const auto& limits = plan.limits;
    const bool memory_by_rlimit = native != nullptr && native->memory_by_rlimit;
    rlimits_ = make_rlimits(static_cast<std::uint64_t>(limits.cpu_time.count()), limits.file_size_bytes,
                            limits.open_files, memory_by_rlimit ? limits.memory_bytes : 0);
    args = ChildArgs{
        .argv = argv_.data(),
        .envp = envp_.data(),
        .cwd = cwd_.c_str(),
        .stdout_fd = pipes.out.write.get(),
        .stderr_fd = pipes.err.write.get(),
        .report_fd = pipes.report.write.get(),
        .control_fd = pipes.control.read.get(),
        .timeout_us = std::chrono::duration_cast<std::chrono::microseconds>(limits.timeout).count(),
        .rlimits = &rlimits_,
        .drop = native == nullptr && plan.run_as.has_value(),
        .no_new_privs = native == nullptr && plan.no_new_privs,
        .uid = plan.run_as ? plan.run_as->uid : 0,
        .gid = plan.run_as ? plan.run_as->gid : 0,
        .fd3 = native == nullptr ? setup.fd3 : -1,
    };
    if (native == nullptr && setup.cgroup != nullptr) {  // the native init joins its cgroups itself
      for (std::size_t i = 0; i < setup.cgroup->procs.size() && i < 2; ++i) {
        args.cgroup_procs[i] = setup.cgroup->procs[i];
      }
    }
  }
  ChildPlan(const ChildPlan&) = delete;
  ChildPlan& operator=(const ChildPlan&) = delete;

  ChildArgs args;

 private:
  std::vector<const char*> argv_, envp_;
  std::string cwd_;
  RlimitSet rlimits_;
};

// The supervisor, or the native init in its new namespaces: cloned by the spawn helper when
// one runs (spawn_helper.hpp), else by a raw clone of this process (no atfork handlers run in the
// child, see child.hpp), which in the child never returns.
Result<TreeRoot> start_tree_root(const TreeSetup& setup, const ChildPlan& child, const TreePipes& pipes) {
  const char* what = setup.native != nullptr ? "clone the native sandbox init" : "fork supervisor";
  auto via_helper = start_via_helper(child.args, setup.native, pipes.maps.read.get(), setup.native_plan);
  if (!via_helper) return error_of(std::move(via_helper).map_error(add_context(std::string(what) + ": ")));
  if (*via_helper) return std::move(**via_helper);
  const pid_t pid = raw_clone((setup.native != nullptr ? native_clone_flags(*setup.native) : 0) | SIGCHLD);
  if (pid == 0) {
    if (setup.native != nullptr) run_init_in_child(child.args, *setup.native, pipes.maps.read.get());
    supervise_in_child(child.args);
  }
  if (pid < 0) return fail(Errc::spawn_failed, what, errno);
  count_direct_start();
  return TreeRoot::direct(pid);
}

// Only the child holds its ends now. A user-namespaced init gets its uid/gid maps, then the EOF
// on the maps pipe that releases it.
Result<void> release_child(TreeRoot& child, const TreeSetup& setup, TreePipes& pipes) {
  for (auto* end : {&pipes.out.write, &pipes.err.write, &pipes.report.write, &pipes.control.read, &pipes.maps.read}) {
    end->reset();
  }
  if (has_user_namespace(setup)) {
    auto mapped = write_id_maps_from_parent(child.pid(), setup.native->uid, setup.native->gid);
    if (!mapped) {
      child.kill();
      (void)child.wait();
      return mapped.map_error(add_context("write the uid/gid maps of the native sandbox: "));
    }
  }
  pipes.maps.write.reset();
  for (const auto& fd : {pipes.out.read.get(), pipes.err.read.get(), pipes.report.read.get()}) {
    ::fcntl(fd, F_SETFL, O_NONBLOCK);
  }
  return {};
}

// The report of a tree that gave none: killed at the backstop (a time-out), or an error when the
// supervisor (init) died before the command ended.
Result<ChildReport> report_without_child(Pump& pump, TreeRoot& child, const TreeSetup& setup) {
  if (!pump.killed()) pump.kill_tree();
  const std::optional<int> status = child.wait();
  if (pump.supervisor_lost()) {
    const bool all_killed = setup.cgroup != nullptr || setup.native != nullptr;  // else only its process group
    return fail(Errc::spawn_failed, std::string(setup.native ? "the native sandbox init" : "the execution supervisor") +
                                        " died before the command ended (wait status " +
                                        (status ? std::to_string(*status) : std::string("unknown")) + "); " +
                                        (all_killed ? "every process of the run was killed"
                                                    : "its process group was killed; processes that left it may "
                                                      "survive (no cgroup to find them)"));
  }
  ChildReport report{};
  report.timed_out = 1;
  report.wait_status = status.value_or(0);
  return report;
}

// The report once the pump is done. With one, the tree is gone and reaping the supervisor (the
// init's exit tears its namespaces down) can wait: it is left to `cleanup`.
// `child` is moved into that job only then: until the pump is done with it, it kills through it.
Result<ChildReport> collect_report(Pump& pump, TreeRoot& child, const TreeSetup& setup, Janitor& cleanup) {
  if (!pump.has_report()) return report_without_child(pump, child, setup);
  cleanup.post([held = std::make_shared<TreeRoot>(std::move(child))] { (void)held->wait(); });
  return pump.report();
}

}  // namespace

void add_cgroup_usage(Result<ProcessResult>& result, const CgroupUsage& usage) noexcept {
  if (!result) return;
  result->oom_killed = usage.oom_killed;
  result->pids_limit_hit = usage.pids_limit_hit;
  result->usage.peak_memory_bytes = usage.peak_memory_bytes;
}

Result<ProcessResult> run_process_tree(const LaunchPlan& plan, const TreeSetup& setup, Janitor& cleanup,
                                       std::stop_token stop, const OutputSink& sink) {
  if (plan.argv.empty()) return fail(Errc::internal, "launch plan without argv");
  // 1. Pipes, and everything the child reads, before the clone.
  auto pipes = make_tree_pipes(plan, setup);
  if (!pipes) return error_of(pipes);
  const ChildPlan child_plan(plan, setup, *pipes);
  // 2. The supervisor, or the native init in its new namespaces.
  auto child = start_tree_root(setup, child_plan, *pipes);
  if (!child) return error_of(child);
  // 3. Let it go: its pipe ends closed here, a user-namespaced init's uid/gid maps written.
  if (auto released = release_child(*child, setup, *pipes); !released) return error_of(released);
  // 4. Pump until the tree is over; a stop request wakes the pump, which closes the control pipe.
  Pump pump(*child, pipes->pump_ends(), setup.cgroup, setup.native == nullptr, plan.limits);
  {
    std::stop_callback on_stop(stop, [fd = pipes->wake.get()] { ::eventfd_write(fd, 1); });
    pump.run(sink);
  }
  // 5. The outcome, with the output captured.
  return collect_report(pump, *child, setup, cleanup)
      .and_then([&](const ChildReport& report) { return decode_report(report, setup.native); })
      .map([&](ProcessResult result) {
        result.out = pump.finish_out();
        result.err = pump.finish_err();
        return result;
      });
}

}  // namespace pagi_exec::sys
