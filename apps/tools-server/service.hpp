// SPDX-License-Identifier: Apache-2.0
// ToolExecutorService: the gRPC service of tools.proto, adapting each RPC to one Executor call.
#pragma once

#include <grpcpp/grpcpp.h>

#include <pagi_exec/pagi_exec.hpp>

#include "auth.hpp"
#include "cancellation.hpp"
#include "codec.hpp"
#include "executor_holder.hpp"
#include "tools.grpc.pb.h"

namespace tools_server {

/// Each RPC authenticates, decodes, runs the Executor with a stop token tied to the call,
/// encodes and returns.
/// No policy, limits or defaults live here. Thread-safe: one instance serves every gRPC thread.
class ToolExecutorService final : public tools::ToolExecutorService::Service {
 public:
  /// `executor`, `watcher` and `auth` must outlive the service.
  /// `audit` (may be null) records rejected credentials.
  ToolExecutorService(const ExecutorHolder& executor, codec::HealthReport health, CancellationWatcher& watcher,
                      const AuthHolder& auth, std::shared_ptr<pagi_exec::AuditSink> audit)
      : executor_(executor), health_(std::move(health)), watcher_(watcher), auth_(auth), audit_(std::move(audit)) {}

  /// Decides and runs one request; see codec::to_proto for what the client gets back.
  grpc::Status RequestExecution(grpc::ServerContext* context, const tools::ExecutionRequest* request,
                                tools::ExecutionResponse* response) override;

  /// SERVING or DEGRADED, the version, and the isolation, safe mode and sandbox in effect.
  grpc::Status HealthCheck(grpc::ServerContext* context, const google::protobuf::Empty* request,
                           tools::HealthCheckResponse* response) override;

  /// A page of the history (allowed and refused requests), newest first, filtered.
  grpc::Status ListExecutions(grpc::ServerContext* context, const tools::ListExecutionsRequest* request,
                              tools::ListExecutionsResponse* response) override;

  /// One remembered request by execution id; NOT_FOUND when it is no longer (or never was) held.
  grpc::Status GetExecution(grpc::ServerContext* context, const tools::GetExecutionRequest* request,
                            tools::ExecutionRecord* response) override;

  /// Runs one request and streams it: `started`, then stdout/stderr chunks as they are produced,
  /// then `finished` (a refusal is a single `finished`). Writes block while the client is slow,
  /// which slows the command; a client that goes away ends the whole process tree.
  grpc::Status StreamExecution(grpc::ServerContext* context, const tools::ExecutionRequest* request,
                               grpc::ServerWriter<tools::ExecutionEvent>* writer) override;

  /// A dry run: the decision, the rule, the limits a run would get; nothing runs, nothing is created.
  grpc::Status CheckPolicy(grpc::ServerContext* context, const tools::ExecutionRequest* request,
                           tools::PolicyDecision* response) override;

 private:
  const ExecutorHolder& executor_;  // each RPC runs on one snapshot of it
  codec::HealthReport health_;
  CancellationWatcher& watcher_;
  const AuthHolder& auth_;  // every RPC but HealthCheck proves its twin first
  std::shared_ptr<pagi_exec::AuditSink> audit_;

  // Authenticates the call and binds `request.twin_id` to the proven twin (Authenticator::bind);
  // a refused credential is logged and audited before its status is returned.
  [[nodiscard]] grpc::Status bind(grpc::ServerContext& context, const char* rpc, pagi_exec::Request& request) const;
  [[nodiscard]] grpc::Status bind(grpc::ServerContext& context, const char* rpc, std::string& twin_id) const;
  void report_rejection(const grpc::ServerContext& context, const char* rpc, const pagi_exec::Request& request,
                        const grpc::Status& status) const;
};

}  // namespace tools_server
