// SPDX-License-Identifier: Apache-2.0
// Parent side of an execution: start a supervised process tree and pump its output.
#pragma once

#include "pagi_exec/spawner.hpp"

namespace pagi_exec::sys {

struct NativeArgs;

/// Runs a cwd or bwrap `plan` under a supervisor process (supervisor.hpp), or a native plan
/// under its sandbox init (native.hpp) when `native` is given, and pumps the output with the
/// plan's caps. Thread-safe.
[[nodiscard]] Result<ProcessResult> run_process_tree(const LaunchPlan& plan, const NativeArgs* native,
                                                     std::stop_token stop, const OutputSink& sink);

/// Spawner for cwd and bwrap plans.
class ProcessSpawner final : public Spawner {
 public:
  [[nodiscard]] Result<ProcessResult> spawn(const LaunchPlan& plan, std::stop_token stop,
                                            const OutputSink& sink) const override;
};

}  // namespace pagi_exec::sys
