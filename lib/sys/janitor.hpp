// SPDX-License-Identifier: Apache-2.0
// Janitor: work that must happen after an execution but not before its response — reaping the
// supervisor or init, recycling a cgroup, removing a working folder.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace pagi_exec::sys {

/// One background thread running posted jobs in order, owned by what posts to it (a spawner, an
/// Executor's folder clean-up). Thread-safe. The destructor runs every job still queued, then
/// joins, so nothing posted is lost when the owner goes. A job must not own the Janitor that
/// runs it (the destructor would then join its own thread).
class Janitor {
 public:
  Janitor();
  ~Janitor();
  Janitor(const Janitor&) = delete;
  Janitor& operator=(const Janitor&) = delete;

  /// Queues `job`; it must not throw.
  void post(std::function<void()> job);
  /// Blocks until every job posted before the call has run (for tests and shutdown).
  void drain();

 private:
  void loop();
  std::mutex mutex_;
  std::condition_variable wake_, idle_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  bool busy_ = false;
  std::thread thread_;
};

}  // namespace pagi_exec::sys
