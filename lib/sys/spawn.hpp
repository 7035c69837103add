// SPDX-License-Identifier: Apache-2.0
// The real Spawner: a supervisor process per execution, output pumped with caps.
#pragma once

#include "pagi_exec/spawner.hpp"

namespace pagi_exec::sys {

/// Spawner that forks a supervisor (see supervisor.hpp) and pumps its command's output.
class ProcessSpawner final : public Spawner {
 public:
  [[nodiscard]] Result<ProcessResult> spawn(const LaunchPlan& plan, std::stop_token stop) const override;
};

}  // namespace pagi_exec::sys
