// SPDX-License-Identifier: Apache-2.0
// ExecutorHolder: the Executor in effect, swapped atomically when the policy is reloaded.
#pragma once

#include <memory>
#include <mutex>

#include <pagi_exec/pagi_exec.hpp>

namespace tools_server {

/// Each RPC takes a snapshot with current() and runs on it to the end, so an execution keeps the
/// policy it started under; replace() makes later RPCs see the new one. Nobody ever sees a
/// half-updated executor. Thread-safe.
class ExecutorHolder {
 public:
  explicit ExecutorHolder(pagi_exec::Executor executor)
      : current_(std::make_shared<const pagi_exec::Executor>(std::move(executor))) {}

  [[nodiscard]] std::shared_ptr<const pagi_exec::Executor> current() const {
    std::lock_guard lock(mutex_);
    return current_;
  }

  void replace(pagi_exec::Executor executor) {
    auto next = std::make_shared<const pagi_exec::Executor>(std::move(executor));
    std::lock_guard lock(mutex_);
    current_ = std::move(next);
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const pagi_exec::Executor> current_;
};

}  // namespace tools_server
