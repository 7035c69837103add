// SPDX-License-Identifier: Apache-2.0
// Workers: threads for the work of an RPC that waits (a process, a record synced to disk), so
// that grpc's own threads only ever do work that cannot block.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>

namespace tools_server {

/// Worker threads the server allows beyond TOOLS_MAX_CONCURRENCY, for brief tasks (see Workers).
inline constexpr std::size_t brief_task_threads = 256;

/// A pool that never queues: run() hands the task to an idle thread, or starts a new one when
/// none is idle, up to `max_threads`. Admission bounds the executions, which hold a thread for
/// their whole run; the cap only bounds the brief tasks beyond them (answers to calls admission
/// turned away, records synced to disk), so a flood of those cannot make the server start
/// threads without end. A thread idle for `linger` ends. Thread-safe.
class Workers {
 public:
  explicit Workers(std::size_t max_threads, std::chrono::milliseconds linger = std::chrono::seconds(30))
      : max_threads_(max_threads), linger_(linger) {}
  /// Waits until every task has returned and every thread has ended.
  ~Workers();
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  /// Runs `task` on a worker thread now; false (and `task` not run) when no thread is idle and
  /// `max_threads` run already or the system cannot create one.
  [[nodiscard]] bool run(std::function<void()> task);

 private:
  void work(std::function<void()> task);

  std::size_t max_threads_;
  std::chrono::milliseconds linger_;
  std::mutex mutex_;
  std::condition_variable ready_;  // a task was queued for an idle thread, or the pool ends
  std::condition_variable ended_;  // a thread ended
  std::deque<std::function<void()>> tasks_;  // each already promised to an idle thread
  std::size_t idle_ = 0;     // idle threads no queued task is promised to
  std::size_t threads_ = 0;  // threads alive
  bool closing_ = false;
};

}  // namespace tools_server
