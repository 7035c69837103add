// SPDX-License-Identifier: Apache-2.0
// StreamCall: the reactor of one StreamExecution, with one write in flight and a bounded queue.
#pragma once

#include <chrono>
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
/// A client that cancels, or whose deadline passes, fires the stop token. A client that stays
/// but stops reading is waited for until the run's time limit plus stall_grace at most: then the
/// stream has stalled, write() gives up (which stops the run) and finish() cancels the call, so
/// such a client holds a slot and a thread no longer than any run does. Deletes itself once grpc
/// is done with the call: nothing may touch it after finish().
class StreamCall final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  /// At least two events never block: a run that is refused or cannot start writes that many.
  static constexpr std::size_t default_max_queued = 8;
  /// How long past its time limit a run's output waits for a client that does not read: the
  /// same grace as the pump's backstop (lib/sys/pump.hpp), after which any run has ended.
  static constexpr std::chrono::seconds stall_grace{2};

  StreamCall(const grpc::CallbackServerContext& context, Cancellations::Registration stop,
             std::size_t max_queued = default_max_queued)
      : context_(context), stop_(std::move(stop)), max_queued_(max_queued) {}

  PreparedRequest prepared;
  [[nodiscard]] const Cancellations::Registration& stop() const noexcept { return stop_; }

  /// Queues `event` for the client. False when it will not be sent: the client is gone, or the
  /// run was stopped while the queue was full (the run should stop).
  bool write(grpc::ByteBuffer event);
  /// From now on write() waits for room until `deadline` at most (the run's time limit plus
  /// stall_grace, set when the run starts); past it the stream has stalled.
  void wait_no_later_than(std::chrono::steady_clock::time_point deadline);
  /// Whether a write gave up on a client that made no room by the deadline.
  [[nodiscard]] bool stalled();
  /// Ends the call with `status` once the queued events are sent (dropped if the client is gone).
  /// A stalled call is cancelled instead: its client would never take the write in flight.
  /// Called once, last.
  void finish(grpc::Status status);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override { delete this; }

 private:
  // Sends the next queued event; called with `lock` held and no write in flight, returns unlocked.
  void send_next(std::unique_lock<std::mutex>& lock);

  const grpc::CallbackServerContext& context_;
  Cancellations::Registration stop_;
  std::size_t max_queued_;
  std::mutex mutex_;
  std::condition_variable_any room_;  // an event left the queue, or the client went away
  std::deque<grpc::ByteBuffer> queue_;
  grpc::ByteBuffer in_flight_;         // what grpc is sending: alive until OnWriteDone
  bool writing_ = false;               // a write is in flight (the queue is empty otherwise)
  bool gone_ = false;                  // the client cancelled or a write failed
  bool stalled_ = false;               // a write found no room by deadline_
  std::optional<std::chrono::steady_clock::time_point> deadline_;  // none: wait as long as the client stays
  std::optional<grpc::Status> finish_; // finish() came while writes were still to send
};

}  // namespace tools_server
