// SPDX-License-Identifier: Apache-2.0
// The report pipe: what a supervisor or native init tells the parent, and its decoding there.
#pragma once

#include <cstdint>

#include "pagi_exec/spawner.hpp"

namespace pagi_exec::sys {

struct NativeArgs;

/// The supervisor's step that failed, for the parent's error message.
enum class SupervisorStep : std::int32_t {
  none = 0, close_fds, setsid, subreaper, fork, pidfd, poll, wait, native_init, cgroup, drop_privileges,
};

/// What a supervisor writes first on the report pipe, before the ChildReport (a native init
/// writes none): the command's pid, which is also its process group (0: it never started). Should
/// the supervisor die, the parent can still kill that group when no cgroup holds the run.
struct CommandStarted {
  std::int32_t pid = 0;
};

/// What the supervisor or init reports once the whole tree is gone. Plain old data, written
/// in one write(2) of fewer than PIPE_BUF bytes, so the parent reads all of it or none.
struct ChildReport {
  std::int32_t step = 0;           ///< SupervisorStep that failed, 0 when supervision worked
  std::int32_t step_errno = 0;
  std::int32_t init_step = 0;      ///< native: InitStep that failed (step is native_init)
  std::int32_t root_step = 0;      ///< native: RootStep that failed
  std::int32_t root_item = 0;      ///< native: which entry of the root plan's list for that step
  std::int32_t exec_errno = 0;     ///< execve's errno when the command never ran
  std::int32_t wait_status = 0;    ///< the command's wait status
  std::int32_t timed_out = 0;
  std::int32_t cancelled = 0;
  std::int64_t user_us = 0;        ///< CPU time of the command and the children it waited for
  std::int64_t system_us = 0;
  std::int64_t max_rss_kb = 0;
  std::int64_t elapsed_us = 0;     ///< from start of the command to its exit or kill
  std::int64_t running_us = 0;     ///< CLOCK_MONOTONIC once the command exec'd (0: it never did)
};

/// The parent's reading of a report: the command's end, or the step of the supervisor (or of the
/// native init, `native` being its arguments) that failed, naming the path a root step failed
/// on. Errc::spawn_failed (supervisor), Errc::sandbox_setup (native init).
[[nodiscard]] Result<ProcessResult> decode_report(const ChildReport& report, const NativeArgs* native);

}  // namespace pagi_exec::sys
