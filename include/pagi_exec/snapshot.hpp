// SPDX-License-Identifier: Apache-2.0
// Snapshot<T>: the value in effect, replaced atomically (a reloaded policy, reloaded tokens).
#pragma once

#include <memory>
#include <mutex>

namespace pagi_exec {

/// Holds the T in effect. Each reader takes current() once and works on that snapshot to the
/// end (an execution keeps the policy it started under); replace() makes later readers see the
/// new value. Nobody ever sees a half-updated value. Thread-safe; neither copyable nor movable.
template <class T>
class Snapshot {
 public:
  explicit Snapshot(T value) : current_(std::make_shared<const T>(std::move(value))) {}

  /// The value in effect now; it stays valid while the caller holds it, whatever replace() does.
  [[nodiscard]] std::shared_ptr<const T> current() const {
    std::lock_guard lock(mutex_);
    return current_;
  }

  /// Puts `value` in effect for every later current().
  void replace(T value) {
    auto next = std::make_shared<const T>(std::move(value));
    std::lock_guard lock(mutex_);
    current_ = std::move(next);
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const T> current_;
};

}  // namespace pagi_exec
