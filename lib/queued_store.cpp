// SPDX-License-Identifier: Apache-2.0
// QueuedStore: write through while the store takes records; queue, retry and drain in order when not.
#include "queued_store.hpp"

#include <algorithm>
#include <utility>

#include "pagi_exec/rfc3339.hpp"

namespace pagi_exec::detail {
namespace {

std::string records(std::uint64_t n) { return std::to_string(n) + (n == 1 ? " record" : " records"); }

std::string ids(const std::string& first, const std::string& last) {
  return first == last ? "execution id " + first : "execution ids " + first + " .. " + last;
}

}  // namespace

QueuedStore::QueuedStore(std::shared_ptr<ExecutionStore> inner, QueueSpec spec, NoticeSink notify,
                         Housekeeping housekeeping)
    : inner_(std::move(inner)), spec_(spec), notify_(std::move(notify)), housekeeping_(std::move(housekeeping)),
      thread_([this] { run(); }), writer_([this] { write_pending(); }) {}

// The writer first: what it cannot write joins the queue, which the other thread then drains.
QueuedStore::~QueuedStore() {
  {
    const std::lock_guard lock(pending_mutex_);
    pending_stopping_ = true;
  }
  pending_wake_.notify_one();
  writer_.join();
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

// The answering thread's path: one inner write when nothing waits; a copy is kept only for as
// long as that write may fail.
Result<void> QueuedStore::record(ExecutionRecord entry) {
  {
    const std::lock_guard lock(mutex_);
    if (in_flight_ || !queue_.empty()) return enqueue_locked(std::move(entry), "earlier records are still queued");
  }
  auto written = inner_->record(entry);
  const std::lock_guard lock(mutex_);
  if (written) {
    ++written_;
    return {};
  }
  return not_taken_locked(std::move(entry), written.error().message());
}

// A write through failed: the record is queued, and the retry planned.
Result<void> QueuedStore::not_taken_locked(ExecutionRecord entry, const std::string& cause) {
  if (failing_since_) {
    cause_ = cause;  // another caller's failure already planned the retry
  } else {
    failed_locked(cause);
  }
  return enqueue_locked(std::move(entry), cause);
}

void QueuedStore::record_then(ExecutionRecord entry, Recorded done) {
  {
    std::unique_lock lock(mutex_);
    if (in_flight_ || !queue_.empty()) {
      auto queued = enqueue_locked(std::move(entry), "earlier records are still queued");
      lock.unlock();
      return done(std::move(queued));
    }
  }
  bool first = false;
  {
    const std::lock_guard lock(pending_mutex_);
    first = pending_.empty();
    pending_.push_back({std::move(entry), std::move(done)});
  }
  if (first) pending_wake_.notify_one();  // otherwise the writer is awake and takes it with the rest
}

// The writer: all that came while it wrote, in one record_all(); it sleeps only when none came.
void QueuedStore::write_pending() {
  std::unique_lock lock(pending_mutex_);
  for (;;) {
    pending_wake_.wait(lock, [this] { return pending_stopping_ || !pending_.empty(); });
    if (pending_.empty()) return;  // stopping, and all is written
    auto batch = std::exchange(pending_, {});
    lock.unlock();
    write_together(batch);
    lock.lock();
  }
}

// A record the store did not take is queued like record()'s, and its caller told so.
void QueuedStore::write_together(std::vector<Pending>& batch) {
  std::vector<ExecutionRecord> records;
  records.reserve(batch.size());
  for (const auto& pending : batch) records.push_back(pending.record);  // kept in `batch` should it fail
  auto results = inner_->record_all(std::move(records));
  for (std::size_t i = 0; i < batch.size(); ++i) {
    Result<void> answer;
    {
      const std::lock_guard lock(mutex_);
      if (results[i]) {
        ++written_;
      } else {
        answer = not_taken_locked(std::move(batch[i].record), results[i].error().message());
      }
    }
    batch[i].done(std::move(answer));
  }
}

Result<void> QueuedStore::enqueue_locked(ExecutionRecord entry, const std::string& why) {
  const auto bytes = encoded_size_bound(entry);
  const bool first = !in_flight_ && queue_.empty();
  queue_.push_back({std::move(entry), bytes});
  queued_bytes_ += bytes;
  trim_locked();
  if (first) kick_locked();  // the thread plans its first retry
  return fail(Errc::io, "history store: record queued (" + std::to_string(queue_.size() + (in_flight_ ? 1 : 0)) +
                            " waiting): " + why);
}

void QueuedStore::failed_locked(const std::string& cause) {
  if (!failing_since_) failing_since_ = std::chrono::system_clock::now();
  cause_ = cause;
  backoff_ = backoff_.count() == 0 ? spec_.first_retry : std::min(backoff_ * 2, spec_.last_retry);
  retry_at_ = Steady::now() + backoff_;
}

// The oldest waiting record goes first; the one being written stays, it may already be stored.
void QueuedStore::trim_locked() {
  while (!queue_.empty() &&
         (queue_.size() + (in_flight_ ? 1 : 0) > spec_.max_records || queued_bytes_ > spec_.max_bytes)) {
    auto& oldest = queue_.front();
    if (gap_.count++ == 0) {
      gap_.first_id = oldest.record.execution_id;
      kick_locked();  // the thread states the gap
    }
    gap_.last_id = oldest.record.execution_id;
    ++dropped_;
    queued_bytes_ -= oldest.bytes;
    queue_.pop_front();
  }
}

Result<HistoryPage> QueuedStore::query(const HistoryQuery& query) const { return inner_->query(query); }

// The queue first, then the store: a record leaves the queue only once written, so it is always
// in one of the two.
Result<std::optional<ExecutionRecord>> QueuedStore::find(const std::string& execution_id) const {
  {
    const std::lock_guard lock(mutex_);
    const auto same = [&](const Queued& q) { return q.record.execution_id == execution_id; };
    if (auto it = std::find_if(queue_.rbegin(), queue_.rend(), same); it != queue_.rend()) return it->record;
    if (in_flight_ && same(*in_flight_)) return in_flight_->record;
  }
  return inner_->find(execution_id);
}

// Records not stored: those dropped since start, and while the store is away those queued.
StoreHealth QueuedStore::health() const {
  auto inner = inner_->health();
  const std::lock_guard lock(mutex_);
  inner.failed_writes = dropped_;
  if (!failing_since_) return inner;
  const auto waiting = queue_.size() + (in_flight_ ? 1 : 0);
  std::string detail = "history store unavailable since " + to_rfc3339(*failing_since_) + ": " + cause_ + "; " +
                       records(waiting) + " queued";
  if (dropped_ > 0) detail += ", " + records(dropped_) + " dropped from a full queue";
  return {.healthy = false, .detail = std::move(detail), .failed_writes = dropped_ + waiting};
}

std::size_t QueuedStore::queued() const {
  const std::lock_guard lock(mutex_);
  return queue_.size() + (in_flight_ ? 1 : 0);
}

// The store's thread: retries when due, tells what changed, housekeeps, sleeps until the next of
// these or a new queue.
void QueuedStore::run() {
  std::unique_lock lock(mutex_);
  auto housekeep_at = Steady::now() + spec_.housekeeping_every;
  while (!stopping_) {
    if (!queue_.empty() && Steady::now() >= retry_at_) {
      while (!stopping_ && write_oldest(lock)) {
      }
    }
    say(lock, news_locked());
    if (housekeeping_ && Steady::now() >= housekeep_at) {
      housekeep(lock);
      housekeep_at = Steady::now() + spec_.housekeeping_every;
    }
    if (stopping_) break;
    const auto until = queue_.empty() ? housekeep_at : std::min(housekeep_at, retry_at_);
    wake_.wait_until(lock, until, [this] { return stopping_ || kicked_; });
    kicked_ = false;
  }
  drain_before_stop(lock);
}

// Writes the oldest queued record; false when none is left or the write failed.
bool QueuedStore::write_oldest(std::unique_lock<std::mutex>& lock) {
  if (queue_.empty()) return false;
  in_flight_ = std::move(queue_.front());
  queue_.pop_front();
  lock.unlock();
  auto written = inner_->record(in_flight_->record);  // only this thread changes in_flight_
  lock.lock();
  if (!written) {
    queue_.push_front(std::move(*in_flight_));
    in_flight_.reset();
    failed_locked(written.error().message());
    trim_locked();
    return false;
  }
  queued_bytes_ -= in_flight_->bytes;
  in_flight_.reset();
  ++written_;
  if (queue_.empty()) {
    backoff_ = std::chrono::milliseconds(0);
    failing_since_.reset();
  }
  return true;
}

// The last chance: keep trying for stop_drain, then name what stays unwritten.
void QueuedStore::drain_before_stop(std::unique_lock<std::mutex>& lock) {
  const auto until = Steady::now() + spec_.stop_drain;
  while (!queue_.empty() && Steady::now() < until) {
    if (write_oldest(lock)) continue;
    wake_.wait_until(lock, std::min(until, retry_at_));
  }
  auto news = news_locked();
  if (!queue_.empty()) {
    news.push_back({NoticeLevel::error, "history store: " + records(queue_.size()) +
                                            " still queued at stop and not written (" +
                                            ids(queue_.front().record.execution_id, queue_.back().record.execution_id) +
                                            "): not in the execution index (an audit log, if kept, has them)"});
  }
  say(lock, std::move(news));
}

void QueuedStore::housekeep(std::unique_lock<std::mutex>& lock) {
  if (written_ == housekept_at_ || !queue_.empty()) return;  // nothing new, or the store is away
  housekept_at_ = written_;
  lock.unlock();
  auto done = housekeeping_();
  lock.lock();
  const auto error = done ? std::string() : done.error().message();
  if (error == housekeeping_error_) return;
  housekeeping_error_ = error;
  if (!error.empty()) say(lock, {{NoticeLevel::warn, "history store housekeeping failed: " + error}});
}

// What the operator has not heard yet: the store gone or back, and records dropped.
Notices QueuedStore::news_locked() {
  Notices news;
  if (failing_since_ && !said_failing_) {
    said_failing_ = true;
    news.push_back({NoticeLevel::warn, "history store unavailable: " + cause_ +
                                           "; records are queued (at most " + records(spec_.max_records) +
                                           ") and written when it is back"});
  } else if (!failing_since_ && said_failing_) {
    said_failing_ = false;
    news.push_back({NoticeLevel::info, "history store back: the queued records are written"});
  }
  if (gap_.count > 0) {
    news.push_back({NoticeLevel::error, "history store: queue full, " + records(gap_.count) + " dropped (" +
                                            ids(gap_.first_id, gap_.last_id) +
                                            "): not in the execution index (an audit log, if kept, has them)"});
    gap_ = {};
  }
  return news;
}

void QueuedStore::kick_locked() {
  kicked_ = true;
  wake_.notify_one();
}

void QueuedStore::say(std::unique_lock<std::mutex>& lock, Notices notices) {
  if (notices.empty() || !notify_) return;
  lock.unlock();
  notify_(notices);
  lock.lock();
}

}  // namespace pagi_exec::detail
