// SPDX-License-Identifier: Apache-2.0
// The real Spawner: a supervisor process per execution, output pumped with caps.
#pragma once

#include "pagi_exec/spawner.hpp"

namespace pagi_exec::sys {

struct NativeArgs;

/// Runs `plan` under a supervisor process and pumps its output with the plan's caps. `native`
/// is null for cwd and bwrap plans, else the prepared native sandbox. Thread-safe.
[[nodiscard]] Result<ProcessResult> run_supervised(const LaunchPlan& plan, const NativeArgs* native,
                                                   std::stop_token stop);

/// Spawner that forks a supervisor (see supervisor.hpp) and pumps its command's output.
class ProcessSpawner final : public Spawner {
 public:
  [[nodiscard]] Result<ProcessResult> spawn(const LaunchPlan& plan, std::stop_token stop) const override;
};

}  // namespace pagi_exec::sys
