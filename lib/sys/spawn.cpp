// SPDX-License-Identifier: Apache-2.0
// Parent side of an execution: pipes, the clone of the supervisor (or native init), the output
// pump, the report.
#include "sys/spawn.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "sys/capture.hpp"
#include "sys/cgroup.hpp"
#include "sys/child.hpp"
#include "sys/janitor.hpp"
#include "sys/native.hpp"
#include "sys/rlimits.hpp"
#include "sys/supervisor.hpp"
#include "sys/unique_fd.hpp"

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

// NULL-terminated char* arrays over strings the caller keeps alive; built before the clone
// because the child may not allocate.
std::vector<const char*> c_array(const std::vector<std::string>& items) {
  std::vector<const char*> out;
  out.reserve(items.size() + 1);
  for (const auto& s : items) out.push_back(s.c_str());
  out.push_back(nullptr);
  return out;
}

const char* step_name(SupervisorStep step) noexcept {
  switch (step) {
    case SupervisorStep::none: return "none";
    case SupervisorStep::close_fds: return "close inherited descriptors";
    case SupervisorStep::setsid: return "setsid";
    case SupervisorStep::subreaper: return "prctl(PR_SET_CHILD_SUBREAPER)";
    case SupervisorStep::fork: return "fork the command";
    case SupervisorStep::pidfd: return "pidfd_open";
    case SupervisorStep::poll: return "ppoll";
    case SupervisorStep::wait: return "wait4";
    case SupervisorStep::native_init: return "native sandbox init";
    case SupervisorStep::cgroup: return "join the run's cgroup";
    case SupervisorStep::drop_privileges: return "drop to the sandbox's uid/gid";
  }
  return "unknown step";
}

// One output pipe of the command: read as it comes into the capped capture and the sink.
struct OutputPipe {
  int fd;
  OutputStream stream;
  StreamCapture capture;
  bool open = true;
  bool sink_refused = false;  // the sink asked to stop the execution

  // Reads whatever the pipe has now; closes at EOF or on a read error.
  void drain(const OutputSink& sink) {
    std::array<char, 64 * 1024> buf;
    for (;;) {
      const auto n = ::read(fd, buf.data(), buf.size());
      if (n > 0) {
        const std::string_view chunk(buf.data(), static_cast<std::size_t>(n));
        capture.feed(chunk);
        if (sink && !sink_refused && !sink(stream, chunk)) sink_refused = true;
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EINTR)) open = false;
      return;
    }
  }
};

Result<ProcessResult> to_result(const ChildReport& report) {
  if (report.step == static_cast<std::int32_t>(SupervisorStep::native_init)) {
    const auto step = static_cast<InitStep>(report.init_step);
    std::string what = std::string("native sandbox: ") + to_string(step);
    if (step == InitStep::build_root) what += std::string(": ") + to_string(static_cast<RootStep>(report.root_step));
    return fail(Errc::sandbox_setup, what, report.step_errno);
  }
  if (report.step != 0) {
    return fail(Errc::spawn_failed, std::string("supervisor: ") + step_name(static_cast<SupervisorStep>(report.step)),
                report.step_errno);
  }
  ProcessResult result;
  result.exec_errno = report.exec_errno;
  result.timed_out = report.timed_out != 0;
  result.cancelled = report.cancelled != 0;
  const int status = report.wait_status;
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
    result.exit_code = 128 + result.signal;
  }
  result.usage = Usage{.cpu_user = std::chrono::microseconds(report.user_us),
                       .cpu_system = std::chrono::microseconds(report.system_us),
                       .max_rss_bytes = static_cast<std::uint64_t>(report.max_rss_kb) * 1024};
  result.elapsed = std::chrono::microseconds(report.elapsed_us);
  return result;
}

// A user-namespaced init waits until its uid/gid maps are written (user_namespaces(7)):
// setgroups must be denied before an unprivileged gid_map.
bool write_user_maps(pid_t pid, const NativeArgs& native) {
  const auto dir = "/proc/" + std::to_string(pid) + "/";
  const auto put = [&](const char* file, const std::string& text) {
    std::ofstream out(dir + file);
    out << text;
    out.flush();
    return out.good();
  };
  return put("setgroups", "deny") && put("uid_map", std::to_string(native.uid) + " " + std::to_string(::getuid()) + " 1\n") &&
         put("gid_map", std::to_string(native.gid) + " " + std::to_string(::getgid()) + " 1\n");
}

}  // namespace

namespace {

// Every pipe of one tree, parent side and child side: output, the report, the control pipe
// (EOF or a byte: kill it now), the uid/gid-map pipe of a user-namespaced init, and the eventfd
// a stop request rings.
struct TreePipes {
  Pipe out, err, report, control, maps;
  unique_fd wake;
};

// `owner` gets the write ends of the output pipes: the command may reopen its output through
// /dev/stdout (/proc/self/fd/1), which checks the pipe's owner and mode (0600).
Result<TreePipes> make_tree_pipes(bool user_namespace, const std::optional<Credentials>& owner) {
  TreePipes pipes;
  for (auto* pipe : {&pipes.out, &pipes.err, &pipes.report, &pipes.control}) {
    auto made = make_pipe();
    if (!made) return tl::unexpected(made.error());
    *pipe = std::move(*made);
  }
  if (user_namespace) {  // only a user-namespaced init waits for its maps; EOF releases it
    auto made = make_pipe();
    if (!made) return tl::unexpected(made.error());
    pipes.maps = std::move(*made);
  }
  if (owner) {
    for (const int fd : {pipes.out.write.get(), pipes.err.write.get()}) {
      if (::fchown(fd, owner->uid, owner->gid) != 0) return fail(Errc::spawn_failed, "fchown output pipe", errno);
    }
  }
  pipes.wake.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!pipes.wake) return fail(Errc::spawn_failed, "eventfd", errno);
  return pipes;
}

// What the clone's child reads, prepared before the clone (the child may not allocate); the
// arrays point into the plan, which outlives the clone.
struct ChildPlan {
  std::vector<const char*> argv, envp;
  std::string cwd;
  RlimitSet rlimits;
  ChildArgs args;
};

void prepare_child(const LaunchPlan& plan, const TreeSetup& setup, const TreePipes& pipes, ChildPlan& child) {
  const NativeArgs* native = setup.native;
  const auto& limits = plan.limits;
  child.argv = c_array(plan.argv);
  child.envp = c_array(plan.env);
  child.cwd = plan.cwd.string();
  // RLIMIT_NPROC counts every process of the uid, in every sandbox, so it is never set: the
  // pids cgroup limits the tree instead.
  const bool memory_by_rlimit = native != nullptr && native->memory_by_rlimit;
  child.rlimits = make_rlimits(static_cast<std::uint64_t>(limits.cpu_time.count()), limits.file_size_bytes,
                               limits.open_files, memory_by_rlimit ? limits.memory_bytes : 0, 0);
  child.args = ChildArgs{
      .argv = child.argv.data(),
      .envp = child.envp.data(),
      .cwd = child.cwd.c_str(),
      .stdout_fd = pipes.out.write.get(),
      .stderr_fd = pipes.err.write.get(),
      .report_fd = pipes.report.write.get(),
      .control_fd = pipes.control.read.get(),
      .timeout_us = std::chrono::duration_cast<std::chrono::microseconds>(limits.timeout).count(),
      .rlimits = &child.rlimits,
      .drop = native == nullptr && plan.run_as.has_value(),
      .no_new_privs = native == nullptr && plan.no_new_privs,
      .uid = plan.run_as ? plan.run_as->uid : 0,
      .gid = plan.run_as ? plan.run_as->gid : 0,
      .fd3 = native == nullptr ? setup.fd3 : -1,
  };
  if (native == nullptr && setup.cgroup != nullptr) {  // the native init joins its cgroups itself
    for (std::size_t i = 0; i < setup.cgroup->procs.size() && i < 2; ++i) {
      child.args.cgroup_procs[i] = setup.cgroup->procs[i].get();
    }
  }
}

// The parent's side of a running tree: reads output and the report until both end, forwards a
// stop request, and does not rely on the child to end in time. At the backstop (the time limit
// plus a grace), or as soon as the report pipe closes without a report (the supervisor or init
// died), it kills the tree from outside (the init ends its PID namespace; the cgroup holds every
// process of the run) and reads the output for a last moment only, so survivors holding the
// pipes cannot keep the caller waiting.
class Pump {
 public:
  Pump(pid_t child, const TreeSetup& setup, TreePipes& pipes, const Limits& limits, std::int64_t timeout_us)
      : child_(child), setup_(setup), pipes_(pipes), header_left_(setup.native ? 0 : sizeof started_),
        out_{pipes.out.read.get(), OutputStream::out, StreamCapture(limits.output)},
        err_{pipes.err.read.get(), OutputStream::err, StreamCapture(limits.output)},
        give_up_(monotonic_us() + timeout_us + backstop_grace_us) {}

  void run(const OutputSink& sink) {
    while (out_.open || err_.open || report_open_) {
      pollfd fds[4] = {{out_.open ? out_.fd : -1, POLLIN, 0},
                       {err_.open ? err_.fd : -1, POLLIN, 0},
                       {report_open_ ? pipes_.report.read.get() : -1, POLLIN, 0},
                       {pipes_.wake.get(), POLLIN, 0}};
      const auto left_ms = (give_up_ - monotonic_us() + 999) / 1000;
      const int ready = ::poll(fds, 4, static_cast<int>(std::max<std::int64_t>(left_ms, 0)));
      if (ready == 0 || (ready < 0 && errno != EINTR)) {
        if (killed_) return;  // what is left will not end: abandon the output
        kill_tree();
        continue;
      }
      if (ready < 0) continue;
      if (fds[0].revents != 0) out_.drain(sink);
      if (fds[1].revents != 0) err_.drain(sink);
      if (fds[2].revents != 0) read_report();
      if (fds[3].revents != 0 || out_.sink_refused || err_.sink_refused) {
        eventfd_t ignored;
        ::eventfd_read(pipes_.wake.get(), &ignored);
        pipes_.control.write.reset();  // the child kills the tree
      }
    }
  }

  // SIGKILLs the supervisor (or init), every process of the run's cgroup and, while the
  // supervisor has not reported the tree gone, the command's process group: for runs without a
  // cgroup, what remains when the supervisor died. (A group's number is not reused while the
  // group has members; pid numbers only come round again after pid_max allocations.)
  void kill_tree() {
    ::kill(child_, SIGKILL);
    if (header_left_ == 0 && started_.pid > 0 && !has_report()) ::kill(-started_.pid, SIGKILL);
    if (setup_.cgroup != nullptr) (void)CgroupPool::kill_members(*setup_.cgroup);
    killed_ = true;
    give_up_ = std::min(give_up_, monotonic_us() + 250'000);
  }

  [[nodiscard]] bool has_report() const noexcept { return report_bytes_ == sizeof report_; }
  [[nodiscard]] bool supervisor_lost() const noexcept { return supervisor_lost_; }
  [[nodiscard]] bool killed() const noexcept { return killed_; }
  [[nodiscard]] const ChildReport& report() const noexcept { return report_; }
  [[nodiscard]] CapturedStream finish_out() { return out_.capture.finish(); }
  [[nodiscard]] CapturedStream finish_err() { return err_.capture.finish(); }

 private:
  // A supervisor's CommandStarted, then the ChildReport.
  void read_report() {
    const bool header = header_left_ > 0;
    auto* dst = header ? reinterpret_cast<char*>(&started_) + (sizeof started_ - header_left_)
                       : reinterpret_cast<char*>(&report_) + report_bytes_;
    const auto n = ::read(pipes_.report.read.get(), dst, header ? header_left_ : sizeof report_ - report_bytes_);
    if (n > 0 && header) header_left_ -= static_cast<std::size_t>(n);
    if (n > 0 && !header) report_bytes_ += static_cast<std::size_t>(n);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) report_open_ = false;
    if (!report_open_ && !has_report() && !killed_) {
      supervisor_lost_ = true;
      kill_tree();
    }
  }

  pid_t child_;
  const TreeSetup& setup_;
  TreePipes& pipes_;
  CommandStarted started_{};
  std::size_t header_left_;
  OutputPipe out_, err_;
  std::int64_t give_up_;
  ChildReport report_{};
  std::size_t report_bytes_ = 0;
  bool report_open_ = true;
  bool killed_ = false;
  bool supervisor_lost_ = false;
};

// The report of a tree that gave none: killed at the backstop (a time-out), or an error when the
// supervisor (init) died before the command ended.
Result<ChildReport> report_without_child(Pump& pump, pid_t child, const TreeSetup& setup) {
  if (!pump.killed()) pump.kill_tree();
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {}
  if (pump.supervisor_lost()) {
    const bool all_killed = setup.cgroup != nullptr || setup.native != nullptr;  // else only its process group
    return fail(Errc::spawn_failed, std::string(setup.native ? "the native sandbox init" : "the execution supervisor") +
                                        " died before the command ended (wait status " + std::to_string(status) +
                                        "); " +
                                        (all_killed ? "every process of the run was killed"
                                                    : "its process group was killed; processes that left it may "
                                                      "survive (no cgroup to find them)"));
  }
  ChildReport report{};
  report.timed_out = 1;
  report.wait_status = status;
  return report;
}

}  // namespace

void add_cgroup_usage(Result<ProcessResult>& result, const CgroupUsage& usage) noexcept {
  if (!result) return;
  result->oom_killed = usage.oom_killed;
  result->pids_limit_hit = usage.pids_limit_hit;
  result->usage.peak_memory_bytes = usage.peak_memory_bytes;
}

Result<ProcessResult> run_process_tree(const LaunchPlan& plan, const TreeSetup& setup, std::stop_token stop,
                                       const OutputSink& sink) {
  if (plan.argv.empty()) return fail(Errc::internal, "launch plan without argv");
  const NativeArgs* native = setup.native;
  const bool user_namespace = native != nullptr && native->user_namespace;
  // 1. Pipes, and everything the child reads, before the clone.
  std::optional<Credentials> owner = plan.run_as;
  if (native != nullptr) owner = user_namespace ? std::nullopt  // its uid maps to ours
                                                : std::optional<Credentials>({native->uid, native->gid});
  auto pipes = make_tree_pipes(user_namespace, owner);
  if (!pipes) return tl::unexpected(pipes.error());
  ChildPlan child_plan;
  prepare_child(plan, setup, *pipes, child_plan);
  // 2. Raw clone: no atfork handlers run in the child (see child.hpp).
  const pid_t child = raw_clone((native != nullptr ? native_clone_flags(*native) : 0) | SIGCHLD);
  if (child < 0) return fail(Errc::spawn_failed, native ? "clone the native sandbox init" : "fork supervisor", errno);
  if (child == 0) {
    if (native != nullptr) run_init_in_child(child_plan.args, *native, pipes->maps.read.get());
    supervise_in_child(child_plan.args);
  }
  // 3. Only the child holds its ends now; a user-namespaced init gets its maps.
  for (auto* end : {&pipes->out.write, &pipes->err.write, &pipes->report.write, &pipes->control.read, &pipes->maps.read}) {
    end->reset();
  }
  if (user_namespace && !write_user_maps(child, *native)) {
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    return fail(Errc::sandbox_setup, "write the uid/gid maps of the native sandbox", errno);
  }
  pipes->maps.write.reset();  // EOF releases a user-namespaced init
  for (const auto& fd : {pipes->out.read.get(), pipes->err.read.get(), pipes->report.read.get()}) {
    ::fcntl(fd, F_SETFL, O_NONBLOCK);
  }
  // 4. Pump until the tree is over; a stop request wakes the pump, which closes the control pipe.
  Pump pump(child, setup, *pipes, plan.limits, child_plan.args.timeout_us);
  {
    std::stop_callback on_stop(stop, [fd = pipes->wake.get()] { ::eventfd_write(fd, 1); });
    pump.run(sink);
  }
  // 5. The outcome: reaping (the init's exit tears its namespaces down) can wait once it is known.
  Result<ChildReport> report = pump.report();
  if (pump.has_report()) {
    Janitor::instance().post([child] {
      while (::waitpid(child, nullptr, 0) < 0 && errno == EINTR) {}
    });
  } else {
    report = report_without_child(pump, child, setup);
  }
  if (!report) return tl::unexpected(report.error());
  auto result = to_result(*report);
  if (!result) return result;
  result->out = pump.finish_out();
  result->err = pump.finish_err();
  return result;
}

}  // namespace pagi_exec::sys

