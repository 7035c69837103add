// SPDX-License-Identifier: Apache-2.0
// The output pump: the parent's side of a running process tree.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

#include "pagi_exec/spawner.hpp"
#include "sys/capture.hpp"
#include "sys/report.hpp"
#include "sys/unique_fd.hpp"

namespace pagi_exec::sys {

struct CgroupLease;
class TreeRoot;

/// Grace past the time limit after which the parent kills the tree from outside, whatever its
/// supervisor does.
inline constexpr std::int64_t backstop_grace_us = 2'000'000;

/// The parent's ends of a tree's pipes that the pump reads or closes.
struct PumpEnds {
  int out = -1;            ///< read end of the command's stdout
  int err = -1;            ///< read end of the command's stderr
  int report = -1;         ///< read end of the report pipe
  int wake = -1;           ///< eventfd a stop request rings
  unique_fd* control = nullptr;  ///< write end of the control pipe: closing it tells the child to kill the tree
};

/// Reads output and the report until both end, forwards a stop request, and does not rely on
/// the child to end in time. At the backstop (the time limit plus a grace), or as soon as the
/// report pipe closes without a report (the supervisor or init died), it kills the tree from
/// outside (the init ends its PID namespace; the cgroup holds every process of the run) and
/// reads the output for a last moment only, so survivors holding the pipes cannot keep the
/// caller waiting. One per tree, on the thread that runs it.
class Pump {
 public:
  /// `child`: the supervisor or init; `cgroup`: the run's, or null; `started_header`: a
  /// supervisor writes CommandStarted before its report (an init does not).
  Pump(const TreeRoot& child, PumpEnds ends, const CgroupLease* cgroup, bool started_header, const Limits& limits);
  Pump(const Pump&) = delete;
  Pump& operator=(const Pump&) = delete;

  /// Pumps until the output and the report pipes are closed, or the tree was killed and its
  /// output abandoned. `sink` receives the output as it comes; its refusal stops the run.
  void run(const OutputSink& sink);
  /// SIGKILLs the supervisor (or init), every process of the run's cgroup and, while the
  /// supervisor has not reported the tree gone, the command's process group.
  void kill_tree();

  [[nodiscard]] bool has_report() const noexcept { return report_bytes_ == sizeof report_; }
  /// The report pipe closed without a report: the supervisor (init) died.
  [[nodiscard]] bool supervisor_lost() const noexcept { return supervisor_lost_; }
  [[nodiscard]] bool killed() const noexcept { return killed_; }
  [[nodiscard]] const ChildReport& report() const noexcept { return report_; }
  [[nodiscard]] CapturedStream finish_out() { return out_.capture.finish(); }
  [[nodiscard]] CapturedStream finish_err() { return err_.capture.finish(); }

 private:
  // One output pipe of the command: read as it comes into the capped capture and the sink.
  struct OutputPipe {
    int fd;
    OutputStream stream;
    StreamCapture capture;
    bool open = true;
    bool sink_refused = false;  // the sink asked to stop the execution
    void drain(const OutputSink& sink);
  };
  void read_report();

  const TreeRoot& child_;
  PumpEnds ends_;
  const CgroupLease* cgroup_;
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

}  // namespace pagi_exec::sys
