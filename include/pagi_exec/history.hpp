// SPDX-License-Identifier: Apache-2.0
// History: the most recent decisions and outcomes, allowed and refused, in a fixed-size ring: the
// memory ExecutionStore.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "pagi_exec/execution_record.hpp"
#include "pagi_exec/execution_store.hpp"

namespace pagi_exec {

/// A ring of the last `capacity` records. Insertion is O(1) amortized: it overwrites the oldest
/// record, and when the captured output of all records exceeds `output_budget_bytes` it drops
/// the output (not the record) of the oldest ones. All members are thread-safe.
class History final : public ExecutionStore {
 public:
  static constexpr std::size_t default_capacity = default_history_capacity;
  static constexpr std::uint64_t default_output_budget = default_history_output_budget;

  explicit History(std::size_t capacity = default_capacity, std::uint64_t output_budget_bytes = default_output_budget);

  /// Adds a record (its sequence is assigned here), dropping the oldest when full. Never fails.
  [[nodiscard]] Result<void> record(ExecutionRecord entry) override;

  /// Up to `limit` records, newest first.
  [[nodiscard]] std::vector<ExecutionRecord> newest_first(std::size_t limit = SIZE_MAX) const;
  /// The records matching `query`, newest first, one page. Never fails.
  [[nodiscard]] Result<HistoryPage> query(const HistoryQuery& query) const override;
  /// The record with this execution id, if it is still held. Never fails.
  [[nodiscard]] Result<std::optional<ExecutionRecord>> find(const std::string& execution_id) const override;
  /// Always healthy: "memory (N records)".
  [[nodiscard]] StoreHealth health() const override;

  [[nodiscard]] std::size_t size() const;
  [[nodiscard]] std::size_t capacity() const noexcept { return slots_.size(); }

 private:
  [[nodiscard]] const ExecutionRecord& nth_newest(std::size_t i) const noexcept;
  void enforce_output_budget();

  mutable std::mutex mutex_;
  std::vector<ExecutionRecord> slots_;  // fixed size; never reallocated
  std::size_t next_ = 0;                // slot the next record goes to
  std::size_t size_ = 0;
  std::uint64_t sequence_ = 0;
  std::uint64_t output_budget_;
  std::uint64_t output_bytes_ = 0;      // captured output held by all records
  std::uint64_t trim_from_ = 1;         // records older than this sequence hold no output
};

}  // namespace pagi_exec
