// SPDX-License-Identifier: Apache-2.0
// QueuedStore: a durable store's writes that never hold up or lose an answer while it is away.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "pagi_exec/execution_store.hpp"
#include "pagi_exec/notice.hpp"

namespace pagi_exec::detail {

/// How a QueuedStore queues and retries; the bounds come from StoreSettings.
struct QueueSpec {
  std::size_t max_records = default_queue_records;
  std::uint64_t max_bytes = default_queue_bytes;  ///< as encoded_size_bound() counts a record
  std::chrono::milliseconds first_retry{100};     ///< after a failed write; doubled after each failure
  std::chrono::milliseconds last_retry{5000};     ///< the most the doubling reaches
  std::chrono::milliseconds stop_drain{2000};     ///< how long the destructor keeps trying
  std::chrono::milliseconds housekeeping_every{250};  ///< at most this often, and only after writes
};

/// Work the store's own thread does now and then after writes (SQLite: a WAL checkpoint), off
/// the threads that answer requests.
using Housekeeping = std::function<Result<void>()>;

/// Wraps a durable store. record() writes through while nothing is queued, so a healthy store
/// keeps its promise (a record is in it once record() returns success). When the write fails,
/// or earlier records still wait, the record joins a bounded queue instead and record() returns
/// Errc::io saying so: the caller answers all the same. A thread of its own retries the oldest
/// queued record with a doubling delay (first_retry .. last_retry) and writes the queue in order
/// once the store takes records again. A full queue drops its oldest record; the thread states
/// each such gap (how many, which execution ids) in a notice: those records are not in the index
/// (the audit log has them).
///
/// find() also sees the queue (a queued record has sequence 0); query() sees records once they
/// are written. health() is unhealthy while records are queued or the last write failed. The
/// destructor tries to write what is queued for stop_drain and states what it could not.
/// `notify` is called from the store's thread only. All members are thread-safe.
class QueuedStore final : public ExecutionStore {
 public:
  QueuedStore(std::shared_ptr<ExecutionStore> inner, QueueSpec spec, NoticeSink notify = {},
              Housekeeping housekeeping = {});
  ~QueuedStore() override;

  [[nodiscard]] Result<void> record(ExecutionRecord entry) override;
  /// Queued like record() when earlier records wait; otherwise a thread of the store's writes
  /// it with every other record_then() record that came meanwhile, in one record_all(), then
  /// calls each `done`.
  void record_then(ExecutionRecord entry, Recorded done) override;
  [[nodiscard]] Result<HistoryPage> query(const HistoryQuery& query) const override;
  [[nodiscard]] Result<std::optional<ExecutionRecord>> find(const std::string& execution_id) const override;
  [[nodiscard]] StoreHealth health() const override;

  /// Records queued because the store did not take them, the one being retried included (not
  /// record_then()'s, which wait only for the transaction being written).
  [[nodiscard]] std::size_t queued() const;

 private:
  struct Queued {
    ExecutionRecord record;
    std::uint64_t bytes = 0;
  };
  // Records dropped from a full queue since the last notice.
  struct Gap {
    std::uint64_t count = 0;
    std::string first_id, last_id;
  };
  using Steady = std::chrono::steady_clock;

  [[nodiscard]] Result<void> enqueue_locked(ExecutionRecord entry, const std::string& why);
  [[nodiscard]] Result<void> not_taken_locked(ExecutionRecord entry, const std::string& cause);
  void failed_locked(const std::string& cause);
  void trim_locked();
  void run();
  bool write_oldest(std::unique_lock<std::mutex>& lock);
  void drain_before_stop(std::unique_lock<std::mutex>& lock);
  void housekeep(std::unique_lock<std::mutex>& lock);
  void say(std::unique_lock<std::mutex>& lock, Notices notices);
  void kick_locked();
  [[nodiscard]] Notices news_locked();
  // record_then()'s records, written by writer_.
  struct Pending {
    ExecutionRecord record;
    Recorded done;
  };
  void write_pending();
  void write_together(std::vector<Pending>& batch);

  std::shared_ptr<ExecutionStore> inner_;
  QueueSpec spec_;
  NoticeSink notify_;
  Housekeeping housekeeping_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;  // kicked_ or stopping_ was set
  std::deque<Queued> queue_;      // oldest first, behind in_flight_
  std::optional<Queued> in_flight_;  // the oldest, being written by the thread (read-only meanwhile)
  std::uint64_t queued_bytes_ = 0;   // of queue_ and in_flight_
  std::chrono::milliseconds backoff_{0};
  Steady::time_point retry_at_;
  std::optional<std::chrono::system_clock::time_point> failing_since_;
  std::string cause_;                // of the last failed write
  bool said_failing_ = false;        // the operator was told the store is away
  Gap gap_;
  std::uint64_t dropped_ = 0;        // records dropped from a full queue since start
  std::uint64_t written_ = 0;        // records the inner store took
  std::uint64_t housekept_at_ = 0;   // written_ at the last housekeeping
  std::string housekeeping_error_;   // of the last housekeeping, told once
  bool stopping_ = false;
  bool kicked_ = false;              // the thread has news to act on before it sleeps again

  std::mutex pending_mutex_;         // guards the two below
  std::condition_variable pending_wake_;
  std::vector<Pending> pending_;     // oldest first
  bool pending_stopping_ = false;

  // Last members: started once everything above is ready.
  std::thread thread_;               // retries, notices, housekeeping
  std::thread writer_;               // record_then()'s records
};

}  // namespace pagi_exec::detail
