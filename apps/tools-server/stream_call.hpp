// SPDX-License-Identifier: Apache-2.0
// StreamCall: the reactor of one StreamExecution, with one write in flight and a bounded queue.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>

#include <grpcpp/grpcpp.h>

#include "cancellation.hpp"
#include "unary_call.hpp"

namespace tools_server {

/// One StreamExecution. The thread running the execution queues events with write(); grpc sends
/// them one at a time. While `max_queued` events wait, write() blocks, so a client slower than
/// the command slows the command down (its pipe fills) instead of the server holding its output.
/// A client that cancels, or whose deadline passes, fires the stop token. Deletes itself once
/// grpc is done with the call: nothing may touch it after finish().
class StreamCall final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  /// At least two events never block: a run that is refused or cannot start writes that many.
  static constexpr std::size_t default_max_queued = 8;

  explicit StreamCall(Cancellations::Registration stop, std::size_t max_queued = default_max_queued)
      : stop_(std::move(stop)), max_queued_(max_queued) {}

  PreparedRequest prepared;
  [[nodiscard]] const Cancellations::Registration& stop() const noexcept { return stop_; }

  /// Queues `event` for the client. False when it will not be sent: the client is gone, or the
  /// run was stopped while the queue was full (the run should stop).
  bool write(grpc::ByteBuffer event);
  /// Ends the call with `status` once the queued events are sent (dropped if the client is gone).
  /// Called once, last.
  void finish(grpc::Status status);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override { delete this; }

 private:
  // Sends the next queued event; called with `lock` held and no write in flight, returns unlocked.
  void send_next(std::unique_lock<std::mutex>& lock);

  Cancellations::Registration stop_;
  std::size_t max_queued_;
  std::mutex mutex_;
  std::condition_variable_any room_;  // an event left the queue, or the client went away
  std::deque<grpc::ByteBuffer> queue_;
  grpc::ByteBuffer in_flight_;         // what grpc is sending: alive until OnWriteDone
  bool writing_ = false;               // a write is in flight (the queue is empty otherwise)
  bool gone_ = false;                  // the client cancelled or a write failed
  std::optional<grpc::Status> finish_; // finish() came while writes were still to send
};

}  // namespace tools_server
