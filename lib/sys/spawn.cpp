// SPDX-License-Identifier: Apache-2.0
// Parent side of an execution: pipes, the supervisor's fork, the output pump, the report.
#include "sys/spawn.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "sys/capture.hpp"
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

// NULL-terminated char* arrays over strings the caller keeps alive; built before fork because
// the child may not allocate.
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
    case SupervisorStep::pipe: return "pipe2";
    case SupervisorStep::fork: return "fork the command";
    case SupervisorStep::pidfd: return "pidfd_open";
    case SupervisorStep::poll: return "ppoll";
    case SupervisorStep::wait: return "wait4";
    case SupervisorStep::rlimits: return "setrlimit";
    case SupervisorStep::user_maps: return "write uid/gid maps";
    case SupervisorStep::native_init: return "native sandbox init";
  }
  return "unknown step";
}

// Reads whatever `fd` has now into `capture`; returns false at EOF.
bool drain(int fd, StreamCapture& capture) {
  std::array<char, 64 * 1024> buf;
  for (;;) {
    const auto n = ::read(fd, buf.data(), buf.size());
    if (n > 0) {
      capture.feed(std::string_view(buf.data(), static_cast<std::size_t>(n)));
      continue;
    }
    if (n == 0) return false;
    return errno == EAGAIN || errno == EINTR;  // any other error ends the stream too
  }
}

ProcessResult to_result(const SupervisorReport& report) {
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

}  // namespace

Result<ProcessResult> ProcessSpawner::spawn(const LaunchPlan& plan, std::stop_token stop) const {
  if (plan.isolation == Isolation::native) {
    return fail(Errc::internal, "a native plan needs the native spawner (make_native_spawner)");
  }
  return run_supervised(plan, nullptr, std::move(stop));
}

Result<ProcessResult> run_supervised(const LaunchPlan& plan, const NativeArgs* native, std::stop_token stop) {
  if (plan.argv.empty()) return fail(Errc::internal, "launch plan without argv");
  auto out = make_pipe();
  auto err = make_pipe();
  auto report = make_pipe();
  auto control = make_pipe();
  for (auto* p : {&out, &err, &report, &control}) {
    if (!*p) return tl::unexpected(p->error());
  }
  unique_fd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake) return fail(Errc::spawn_failed, "eventfd", errno);

  const auto argv = c_array(plan.argv);
  const auto envp = c_array(plan.env);
  const auto cwd = plan.cwd.string();
  const auto& limits = plan.limits;
  // RLIMIT_NPROC counts every process of the uid, in every sandbox: only where no pids cgroup
  // (native) does better, and never for root, which the kernel exempts anyway.
  const bool memory_by_rlimit = native != nullptr && native->memory_by_rlimit;
  const auto rlimits = make_rlimits(static_cast<std::uint64_t>(limits.cpu_time.count()), limits.file_size_bytes,
                                    limits.open_files, memory_by_rlimit ? limits.memory_bytes : 0, 0);
  const SupervisorArgs args{
      .argv = argv.data(),
      .envp = envp.data(),
      .cwd = cwd.c_str(),
      .stdout_fd = out->write.get(),
      .stderr_fd = err->write.get(),
      .report_fd = report->write.get(),
      .control_fd = control->read.get(),
      .timeout_us = std::chrono::duration_cast<std::chrono::microseconds>(limits.timeout).count(),
      .rlimits = &rlimits,
      .native = native,
  };
  // Raw clone: no atfork handlers run in the child (see supervisor.cpp).
  const auto supervisor = static_cast<pid_t>(::syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0));
  if (supervisor < 0) return fail(Errc::spawn_failed, "fork supervisor", errno);
  if (supervisor == 0) supervise_in_child(args);

  out->write.reset();
  err->write.reset();
  report->write.reset();
  control->read.reset();
  for (const auto& fd : {out->read.get(), err->read.get(), report->read.get()}) {
    ::fcntl(fd, F_SETFL, O_NONBLOCK);
  }
  // A stop request wakes the pump, which closes the control pipe: the supervisor kills the tree.
  std::stop_callback on_stop(stop, [fd = wake.get()] { ::eventfd_write(fd, 1); });

  StreamCapture out_capture(limits.output), err_capture(limits.output);
  SupervisorReport sup{};
  std::size_t report_bytes = 0;
  bool out_open = true, err_open = true, report_open = true;
  while (out_open || err_open || report_open) {
    pollfd fds[4] = {{out_open ? out->read.get() : -1, POLLIN, 0},
                     {err_open ? err->read.get() : -1, POLLIN, 0},
                     {report_open ? report->read.get() : -1, POLLIN, 0},
                     {wake.get(), POLLIN, 0}};
    if (::poll(fds, 4, -1) < 0 && errno != EINTR) {
      ::kill(supervisor, SIGKILL);  // cannot watch it any more; the tree dies with it (PDEATHSIG)
      break;
    }
    if (fds[0].revents != 0) out_open = drain(out->read.get(), out_capture);
    if (fds[1].revents != 0) err_open = drain(err->read.get(), err_capture);
    if (fds[2].revents != 0) {
      auto* dst = reinterpret_cast<char*>(&sup) + report_bytes;
      const auto n = ::read(report->read.get(), dst, sizeof sup - report_bytes);
      if (n > 0) report_bytes += static_cast<std::size_t>(n);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) report_open = false;
    }
    if (fds[3].revents != 0) {
      eventfd_t ignored;
      ::eventfd_read(wake.get(), &ignored);
      control->write.reset();
    }
  }
  int status = 0;
  while (::waitpid(supervisor, &status, 0) < 0 && errno == EINTR) {}

  if (report_bytes != sizeof sup) {
    return fail(Errc::internal, "the execution supervisor ended without a report (wait status " +
                                    std::to_string(status) + ")");
  }
  if (sup.step == static_cast<std::int32_t>(SupervisorStep::native_init)) {
    const auto step = static_cast<InitStep>(sup.init_step);
    std::string what = std::string("native sandbox: ") + to_string(step);
    if (step == InitStep::build_root) what += std::string(": ") + to_string(static_cast<RootStep>(sup.root_step));
    return fail(Errc::sandbox_setup, what, sup.step_errno);
  }
  if (sup.step != 0) {
    return fail(Errc::spawn_failed,
                std::string("supervisor: ") + step_name(static_cast<SupervisorStep>(sup.step)),
                sup.step_errno);
  }
  auto result = to_result(sup);
  result.out = out_capture.finish();
  result.err = err_capture.finish();
  return result;
}

}  // namespace pagi_exec::sys

namespace pagi_exec {
std::shared_ptr<const Spawner> make_process_spawner() {
  static const auto spawner = std::make_shared<const sys::ProcessSpawner>();
  return spawner;
}
}  // namespace pagi_exec
