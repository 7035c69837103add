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

Result<ProcessResult> run_process_tree(const LaunchPlan& plan, const TreeSetup& setup, std::stop_token stop,
                                       const OutputSink& sink) {
  if (plan.argv.empty()) return fail(Errc::internal, "launch plan without argv");
  const NativeArgs* native = setup.native;
  auto out = make_pipe();
  auto err = make_pipe();
  auto report = make_pipe();
  auto control = make_pipe();
  for (auto* p : {&out, &err, &report, &control}) {
    if (!*p) return tl::unexpected(p->error());
  }
  // Only a user-namespaced init waits for its uid/gid maps; its EOF releases it.
  const bool user_namespace = native != nullptr && native->user_namespace;
  Pipe maps;
  if (user_namespace) {
    auto made = make_pipe();
    if (!made) return tl::unexpected(made.error());
    maps = std::move(*made);
  }
  // The command may reopen its output through /dev/stdout (/proc/self/fd/1), which checks the
  // pipe's owner and mode (0600): give the write ends to the uid it runs as.
  const auto command_owner = native == nullptr        ? plan.run_as
                             : native->user_namespace ? std::nullopt  // its uid maps to ours
                                                      : std::optional<Credentials>({native->uid, native->gid});
  if (command_owner) {
    for (const int fd : {out->write.get(), err->write.get()}) {
      if (::fchown(fd, command_owner->uid, command_owner->gid) != 0) {
        return fail(Errc::spawn_failed, "fchown output pipe", errno);
      }
    }
  }
  unique_fd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake) return fail(Errc::spawn_failed, "eventfd", errno);

  const auto argv = c_array(plan.argv);
  const auto envp = c_array(plan.env);
  const auto cwd = plan.cwd.string();
  const auto& limits = plan.limits;
  // RLIMIT_NPROC counts every process of the uid, in every sandbox, so it is never set: the
  // native sandbox's pids cgroup limits the tree instead.
  const bool memory_by_rlimit = native != nullptr && native->memory_by_rlimit;
  const auto rlimits = make_rlimits(static_cast<std::uint64_t>(limits.cpu_time.count()), limits.file_size_bytes,
                                    limits.open_files, memory_by_rlimit ? limits.memory_bytes : 0, 0);
  ChildArgs args{
      .argv = argv.data(),
      .envp = envp.data(),
      .cwd = cwd.c_str(),
      .stdout_fd = out->write.get(),
      .stderr_fd = err->write.get(),
      .report_fd = report->write.get(),
      .control_fd = control->read.get(),
      .timeout_us = std::chrono::duration_cast<std::chrono::microseconds>(limits.timeout).count(),
      .rlimits = &rlimits,
      .drop = native == nullptr && plan.run_as.has_value(),
      .no_new_privs = native == nullptr && plan.no_new_privs,
      .uid = plan.run_as ? plan.run_as->uid : 0,
      .gid = plan.run_as ? plan.run_as->gid : 0,
      .fd3 = native == nullptr ? setup.fd3 : -1,
  };
  if (native == nullptr && setup.cgroup != nullptr) {
    for (std::size_t i = 0; i < setup.cgroup->procs.size() && i < 2; ++i) args.cgroup_procs[i] = setup.cgroup->procs[i].get();
  }
  // Raw clone: no atfork handlers run in the child (see child.hpp).
  const pid_t child = raw_clone((native != nullptr ? native_clone_flags(*native) : 0) | SIGCHLD);
  if (child < 0) return fail(Errc::spawn_failed, native ? "clone the native sandbox init" : "fork supervisor", errno);
  if (child == 0) {
    if (native != nullptr) run_init_in_child(args, *native, maps.read.get());
    supervise_in_child(args);
  }
  out->write.reset();
  err->write.reset();
  report->write.reset();
  control->read.reset();
  maps.read.reset();
  if (user_namespace && !write_user_maps(child, *native)) {
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    return fail(Errc::sandbox_setup, "write the uid/gid maps of the native sandbox", errno);
  }
  maps.write.reset();  // EOF releases a user-namespaced init
  for (const auto& fd : {out->read.get(), err->read.get(), report->read.get()}) {
    ::fcntl(fd, F_SETFL, O_NONBLOCK);
  }
  // A stop request wakes the pump, which closes the control pipe: the tree is killed.
  std::stop_callback on_stop(stop, [fd = wake.get()] { ::eventfd_write(fd, 1); });

  // The child enforces the time limit. The parent does not rely on it: at the backstop (the
  // limit plus a grace), or as soon as the report pipe closes without a report (the supervisor
  // or init died), it kills the tree from outside (the init ends its PID namespace; the cgroup
  // holds every process of the run) and reads the output for a last moment only, so survivors
  // holding the pipes cannot keep the caller waiting.
  const std::int64_t backstop = monotonic_us() + args.timeout_us + backstop_grace_us;
  std::int64_t give_up = backstop;
  bool killed = false;
  bool supervisor_lost = false;
  const auto kill_tree = [&] {
    ::kill(child, SIGKILL);
    if (setup.cgroup != nullptr) (void)CgroupPool::kill_members(*setup.cgroup);
    killed = true;
    give_up = std::min(give_up, monotonic_us() + 250'000);
  };
  OutputPipe out_pipe{out->read.get(), OutputStream::out, StreamCapture(limits.output)};
  OutputPipe err_pipe{err->read.get(), OutputStream::err, StreamCapture(limits.output)};
  ChildReport sup{};
  std::size_t report_bytes = 0;
  bool report_open = true;
  while (out_pipe.open || err_pipe.open || report_open) {
    pollfd fds[4] = {{out_pipe.open ? out_pipe.fd : -1, POLLIN, 0},
                     {err_pipe.open ? err_pipe.fd : -1, POLLIN, 0},
                     {report_open ? report->read.get() : -1, POLLIN, 0},
                     {wake.get(), POLLIN, 0}};
    const auto left_ms = (give_up - monotonic_us() + 999) / 1000;
    const int ready = ::poll(fds, 4, static_cast<int>(std::max<std::int64_t>(left_ms, 0)));
    if (ready == 0 || (ready < 0 && errno != EINTR)) {
      if (killed) break;  // what is left will not end: abandon the output
      kill_tree();
      continue;
    }
    if (ready < 0) continue;
    if (fds[0].revents != 0) out_pipe.drain(sink);
    if (fds[1].revents != 0) err_pipe.drain(sink);
    if (fds[2].revents != 0) {
      auto* dst = reinterpret_cast<char*>(&sup) + report_bytes;
      const auto n = ::read(report->read.get(), dst, sizeof sup - report_bytes);
      if (n > 0) report_bytes += static_cast<std::size_t>(n);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) report_open = false;
      if (!report_open && report_bytes != sizeof sup && !killed) {
        supervisor_lost = true;
        kill_tree();
      }
    }
    if (fds[3].revents != 0 || out_pipe.sink_refused || err_pipe.sink_refused) {
      eventfd_t ignored;
      ::eventfd_read(wake.get(), &ignored);
      control->write.reset();  // the child kills the tree
    }
  }
  if (report_bytes == sizeof sup) {
    // The outcome is known: reaping (the init's exit tears its namespaces down) can wait.
    Janitor::instance().post([child] {
      while (::waitpid(child, nullptr, 0) < 0 && errno == EINTR) {}
    });
  }
  int status = 0;
  if (report_bytes != sizeof sup) {
    if (!killed) kill_tree();
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {}
    if (supervisor_lost) {
      return fail(Errc::spawn_failed,
                  std::string(native ? "the native sandbox init" : "the execution supervisor") +
                      " died before the command ended (wait status " + std::to_string(status) + "); " +
                      (setup.cgroup != nullptr || native != nullptr
                           ? "every process of the run was killed"
                           : "processes the command started may survive (no cgroup to find them)"));
    }
    sup = ChildReport{};
    sup.timed_out = 1;
    sup.wait_status = status;
  }
  auto result = to_result(sup);
  if (!result) return result;
  result->out = out_pipe.capture.finish();
  result->err = err_pipe.capture.finish();
  return result;
}

}  // namespace pagi_exec::sys

