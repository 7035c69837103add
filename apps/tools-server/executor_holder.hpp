// SPDX-License-Identifier: Apache-2.0
// ExecutorHolder: the Executor in effect, swapped atomically when the policy is reloaded.
#pragma once

#include <memory>
#include <mutex>
#include <string>

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

  /// Puts `executor` in effect, and forgets a failed reload (the policy in effect is the new one).
  void replace(pagi_exec::Executor executor) {
    auto next = std::make_shared<const pagi_exec::Executor>(std::move(executor));
    std::lock_guard lock(mutex_);
    current_ = std::move(next);
    reload_error_.clear();
  }

  /// Notes that the last reload failed and why: the executor in effect is older than the file.
  void reload_failed(std::string why) {
    std::lock_guard lock(mutex_);
    reload_error_ = std::move(why);
  }

  /// Why the last reload failed; empty when it succeeded or none was tried.
  [[nodiscard]] std::string reload_error() const {
    std::lock_guard lock(mutex_);
    return reload_error_;
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const pagi_exec::Executor> current_;
  std::string reload_error_;
};

}  // namespace tools_server
