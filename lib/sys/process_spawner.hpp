// SPDX-License-Identifier: Apache-2.0
// The spawner of cwd and bwrap runs (make_process_spawner); the native spawner holds one for the
// plans of other kinds it is given.
#pragma once

#include <memory>

#include "pagi_exec/spawner.hpp"
#include "sys/janitor.hpp"

namespace pagi_exec::sys {

class CgroupPool;

/// Runs cwd and bwrap plans under a supervisor (supervisor.hpp), each in a cgroup of its own
/// when this machine has usable cgroups. Thread-safe.
class ProcessSpawner final : public Spawner {
 public:
  ProcessSpawner();
  /// Errc::internal for a native plan; otherwise as Spawner::spawn.
  [[nodiscard]] Result<ProcessResult> spawn(const LaunchPlan& plan, std::stop_token stop,
                                            const OutputSink& sink) const override;
  /// Waits for the reaps and cgroup recycling of every spawn so far.
  void wait_for_cleanup() const override { cleanup_.drain(); }

 private:
  std::shared_ptr<CgroupPool> pool_;  // null: no usable cgroups
  mutable Janitor cleanup_;           // last member: drained and joined before the pool goes
};

}  // namespace pagi_exec::sys
