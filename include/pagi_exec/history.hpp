// SPDX-License-Identifier: Apache-2.0
// History: the most recent decisions and outcomes, allowed and refused, in a fixed-size ring.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "pagi_exec/outcome.hpp"
#include "pagi_exec/request.hpp"

namespace pagi_exec {

/// One remembered request: who asked what, what was decided, how it ended.
struct ExecutionRecord {
  std::string execution_id;
  std::string twin_id;
  std::string job_id;
  std::string ns;
  std::string tool;
  std::vector<std::string> args;
  bool allowed = false;
  std::string reason;  ///< the policy decision's reason
  std::string rule;    ///< the policy rule that decided
  bool ran = false;
  int exit_code = 0;
  int signal = 0;
  bool timed_out = false;
  std::string message;
  std::chrono::system_clock::time_point started;
  std::chrono::system_clock::time_point finished;
  bool operator==(const ExecutionRecord&) const = default;
};

/// Builds the record of a finished request.
[[nodiscard]] inline ExecutionRecord make_record(const Request& request, const Outcome& outcome,
                                                 std::chrono::system_clock::time_point started,
                                                 std::chrono::system_clock::time_point finished) {
  return ExecutionRecord{
      .execution_id = outcome.execution_id,
      .twin_id = request.twin_id,
      .job_id = request.job_id,
      .ns = request.ns,
      .tool = request.tool,
      .args = request.args,
      .allowed = outcome.decision.allowed,
      .reason = outcome.decision.reason,
      .rule = outcome.decision.rule,
      .ran = outcome.ran,
      .exit_code = outcome.exit_code,
      .signal = outcome.signal,
      .timed_out = outcome.timed_out,
      .message = outcome.message,
      .started = started,
      .finished = finished,
  };
}

/// A ring of the last `capacity` records. Insertion is O(1) (overwrites the oldest);
/// all members are thread-safe.
class History {
 public:
  static constexpr std::size_t default_capacity = 1000;

  explicit History(std::size_t capacity = default_capacity) : slots_(capacity == 0 ? 1 : capacity) {}

  /// Adds a record, dropping the oldest when full.
  void record(ExecutionRecord entry) {
    std::lock_guard lock(mutex_);
    slots_[next_] = std::move(entry);
    next_ = (next_ + 1) % slots_.size();
    if (size_ < slots_.size()) ++size_;
  }

  /// Up to `limit` records, newest first.
  [[nodiscard]] std::vector<ExecutionRecord> newest_first(std::size_t limit = SIZE_MAX) const {
    std::lock_guard lock(mutex_);
    std::vector<ExecutionRecord> out;
    const std::size_t n = std::min(limit, size_);
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      out.push_back(slots_[(next_ + slots_.size() - 1 - i) % slots_.size()]);
    }
    return out;
  }

  /// The record with this execution id, if it is still held.
  [[nodiscard]] std::optional<ExecutionRecord> find(const std::string& execution_id) const {
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < size_; ++i) {
      const auto& slot = slots_[(next_ + slots_.size() - 1 - i) % slots_.size()];
      if (slot.execution_id == execution_id) return slot;
    }
    return std::nullopt;
  }

  [[nodiscard]] std::size_t size() const {
    std::lock_guard lock(mutex_);
    return size_;
  }
  [[nodiscard]] std::size_t capacity() const noexcept { return slots_.size(); }

 private:
  mutable std::mutex mutex_;
  std::vector<ExecutionRecord> slots_;  // fixed size; never reallocated
  std::size_t next_ = 0;                // slot the next record goes to
  std::size_t size_ = 0;
};

}  // namespace pagi_exec
