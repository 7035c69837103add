// SPDX-License-Identifier: Apache-2.0
// StreamCall: events from the execution's thread to grpc, one write at a time.
#include "stream_call.hpp"

namespace tools_server {

bool StreamCall::write(grpc::ByteBuffer event) {
  std::unique_lock lock(mutex_);
  const auto stop = stop_.token();
  room_.wait(lock, stop, [this] { return gone_ || queue_.size() < max_queued_; });
  if (gone_ || queue_.size() >= max_queued_) return false;
  queue_.emplace_back().Swap(&event);  // ByteBuffer has no move; a swap takes its slices
  if (!writing_) send_next(lock);
  return true;
}

void StreamCall::finish(grpc::Status status) {
  std::unique_lock lock(mutex_);
  if (writing_) {
    finish_ = std::move(status);  // OnWriteDone finishes once the queue is empty
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
