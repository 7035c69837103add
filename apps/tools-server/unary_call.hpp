// SPDX-License-Identifier: Apache-2.0
// UnaryCall: the reactor of one RequestExecution; finished where its work ends (here or on a worker).
#pragma once

#include <memory>

#include <grpcpp/grpcpp.h>

#include <pagi_exec/pagi_exec.hpp>

#include "cancellation.hpp"

namespace tools_server {

/// A request as decoded and bound, with the executor snapshot it is decided and run on.
struct PreparedRequest {
  pagi_exec::Request request;
  std::shared_ptr<const pagi_exec::Executor> executor;
};

/// One RequestExecution. A client that cancels, or whose deadline passes, fires the stop token.
/// Deletes itself once grpc is done with the call: nothing may touch it after Finish().
class UnaryCall final : public grpc::ServerUnaryReactor {
 public:
  explicit UnaryCall(Cancellations::Registration stop) : stop_(std::move(stop)) {}

  PreparedRequest prepared;
  [[nodiscard]] const Cancellations::Registration& stop() const noexcept { return stop_; }
  /// Answers the call (StreamCall's name for it). Called once, last.
  void finish(grpc::Status status) { Finish(status); }

  void OnCancel() override { stop_.cancel(); }
  void OnDone() override { delete this; }

 private:
  Cancellations::Registration stop_;
};

}  // namespace tools_server
