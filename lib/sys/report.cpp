// SPDX-License-Identifier: Apache-2.0
// Decoding a supervisor's or native init's report in the parent.
#include "sys/report.hpp"

#include <sys/wait.h>

#include <string>

#include "sys/native.hpp"

namespace pagi_exec::sys {
namespace {

const char* to_string(SupervisorStep step) noexcept {
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

// "native sandbox: build the root file system: mount proc on /…/.native-root/proc".
Error init_failure(const ChildReport& report, const NativeArgs& native) {
  const auto step = static_cast<InitStep>(report.init_step);
  std::string what = std::string("native sandbox: ") + to_string(step);
  if (step == InitStep::build_root) {
    const RootFailure failure{static_cast<RootStep>(report.root_step), report.root_item};
    what += ": " + (native.root != nullptr ? describe(*native.root, failure, native.template_fd >= 0,
                                                      native.workspace != nullptr ? native.workspace : "")
                                           : std::string(to_string(failure.step)));
  }
  return Error::from_errno(Errc::sandbox_setup, report.step_errno, std::move(what));
}

ProcessResult to_process_result(const ChildReport& report) {
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
  // steady_clock is CLOCK_MONOTONIC, one clock for the whole host (no time namespace here).
  if (report.running_us != 0) {
    result.running_since = std::chrono::steady_clock::time_point(std::chrono::microseconds(report.running_us));
  }
  return result;
}

}  // namespace

Result<ProcessResult> decode_report(const ChildReport& report, const NativeArgs* native) {
  if (report.step == static_cast<std::int32_t>(SupervisorStep::native_init) && native != nullptr) {
    return tl::unexpected(init_failure(report, *native));
  }
  if (report.step != 0) {
    return fail(Errc::spawn_failed, std::string("supervisor: ") + to_string(static_cast<SupervisorStep>(report.step)),
                report.step_errno);
  }
  return to_process_result(report);
}

}  // namespace pagi_exec::sys
