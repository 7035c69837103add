// SPDX-License-Identifier: Apache-2.0
// StreamCall: events from the execution's thread to grpc, one write at a time.
#include "stream_call.hpp"

namespace tools_server {

bool StreamCall::write(grpc::ByteBuffer event) {
  std::unique_lock lock(mutex_);
  const auto stop = stop_.token();
  const auto room = [this] { return gone_ || queue_.size() < max_queued_; };
  if (!deadline_) {
    room_.wait(lock, stop, room);
  } else if (!room_.wait_until(lock, stop, *deadline_, room) && !stop.stop_requested()) {
    stalled_ = true;
  }
  if (gone_ || queue_.size() >= max_queued_) return false;
  queue_.emplace_back().Swap(&event);  // ByteBuffer has no move; a swap takes its slices
  if (!writing_) send_next(lock);
  return true;
}

void StreamCall::wait_no_later_than(std::chrono::steady_clock::time_point deadline) {
  const std::lock_guard lock(mutex_);
  deadline_ = deadline;
}

bool StreamCall::stalled() {
  const std::lock_guard lock(mutex_);
  return stalled_;
}

void StreamCall::finish(grpc::Status status) {
  std::unique_lock lock(mutex_);
  if (stalled_) {
    // grpc: a call the server cancelled must end with an error status.
    status = {grpc::StatusCode::CANCELLED, "the client did not take the stream's output within the run's time "
                                           "limit + " + std::to_string(stall_grace.count()) +
                                           " s: the run was stopped and the stream dropped"};
  }
  if (writing_) {
    finish_ = std::move(status);  // OnWriteDone finishes once the queue is empty
    const bool stalled = stalled_;
    lock.unlock();
    // The write in flight completes (not ok) only once the call is cancelled: a client that
    // stopped reading would otherwise keep this call, and its HTTP/2 stream, for as long as it stays.
    if (stalled) context_.TryCancel();
    return;
  }
  lock.unlock();
  Finish(status);
}

void StreamCall::OnWriteDone(bool ok) {
  std::unique_lock lock(mutex_);
  writing_ = false;
  if (!ok) {
    gone_ = true;
    queue_.clear();
    room_.notify_all();
  }
  if (!queue_.empty()) {
    send_next(lock);
    return;
  }
  if (!finish_) return;
  const auto status = std::move(*finish_);
  finish_.reset();
  lock.unlock();
  Finish(status);
}

void StreamCall::OnCancel() {
  stop_.cancel();
  const std::lock_guard lock(mutex_);
  gone_ = true;
  room_.notify_all();
}

void StreamCall::send_next(std::unique_lock<std::mutex>& lock) {
  writing_ = true;
  in_flight_.Swap(&queue_.front());
  queue_.pop_front();
  room_.notify_all();
  lock.unlock();
  StartWrite(&in_flight_);
}

}  // namespace tools_server
