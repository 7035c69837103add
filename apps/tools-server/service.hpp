// SPDX-License-Identifier: Apache-2.0
// ToolExecutorService: the gRPC service of tools.proto, adapting each RPC to one Executor call.
#pragma once

#include <grpcpp/grpcpp.h>

#include <pagi_exec/pagi_exec.hpp>

#include "auth.hpp"
#include "cancellation.hpp"
#include "codec.hpp"
#include "tools.grpc.pb.h"

namespace tools_server {

/// tools.proto's ToolExecutorService. Each RPC authenticates, decodes, runs the Executor with a
/// stop token tied to the call, encodes and returns.
/// It registers the six methods itself rather than deriving from the generated service, so that
/// the three taking an ExecutionRequest receive its raw bytes (see service.cpp).
/// No policy, limits or defaults live here. Thread-safe: one instance serves every gRPC thread.
class ToolExecutorService final : public grpc::Service {
 public:
  /// `host`, `watcher` and `auth` must outlive the service. The host's audit sink (if any) also
  /// records rejected credentials.
  ToolExecutorService(const pagi_exec::Host& host, CancellationWatcher& watcher, const AuthHolder& auth);

  // RequestExecution, StreamExecution and CheckPolicy take the request's raw bytes: a request
  // the server cannot parse (not protobuf, invalid UTF-8 in a string field) is INVALID_ARGUMENT
  // naming the field, with one log line, instead of grpc++'s INTERNAL with no message.

  /// RequestExecution: decides and runs one request; see codec::to_proto for what the client gets back.
  grpc::Status request_execution(grpc::ServerContext* context, const grpc::ByteBuffer* request,
                                 grpc::ByteBuffer* response);

  /// "healthy" or "degraded" (with why), the version, and the isolation, safe mode and sandbox in effect.
  grpc::Status HealthCheck(grpc::ServerContext* context, const google::protobuf::Empty* request,
                           tools::HealthCheckResponse* response);

  /// A page of the history (allowed and refused requests), newest first, filtered.
  grpc::Status ListExecutions(grpc::ServerContext* context, const tools::ListExecutionsRequest* request,
                              tools::ListExecutionsResponse* response);

  /// One remembered request by execution id; NOT_FOUND when it is no longer (or never was) held.
  grpc::Status GetExecution(grpc::ServerContext* context, const tools::GetExecutionRequest* request,
                            tools::ExecutionRecord* response);

  /// StreamExecution: runs one request and streams it: `started`, then stdout/stderr chunks as
  /// they are produced, then `finished` (a refusal or a call that cannot run as asked is a single
  /// `finished`). Writes block while the client is slow, which slows the command; a client that
  /// goes away ends the whole process tree.
  grpc::Status stream_execution(grpc::ServerContext* context, const grpc::ByteBuffer* request,
                                grpc::ServerWriter<grpc::ByteBuffer>* writer);

  /// CheckPolicy: a dry run: the decision (Executor::check, the same a run makes), the rule, the
  /// limits a run would get; nothing runs, nothing is created.
  grpc::Status check_policy(grpc::ServerContext* context, const grpc::ByteBuffer* request, grpc::ByteBuffer* response);

 private:
  const pagi_exec::Host& host_;  // each RPC runs on one snapshot of its executor
  CancellationWatcher& watcher_;
  const AuthHolder& auth_;  // every RPC but HealthCheck proves its twin first

  // Authenticates the call and binds `request.twin_id` to the proven twin (Authenticator::bind);
  // a refused credential is logged and audited before its status is returned.
  [[nodiscard]] grpc::Status bind(grpc::ServerContext& context, const char* rpc, pagi_exec::Request& request) const;
  [[nodiscard]] grpc::Status bind(grpc::ServerContext& context, const char* rpc, std::string& twin_id) const;
  // The raw request as a library Request, then bound as above. A request that does not parse is
  // logged in one line; an unauthenticated caller gets UNAUTHENTICATED whatever it sent.
  [[nodiscard]] grpc::Status decode_and_bind(grpc::ServerContext& context, const char* rpc, const grpc::ByteBuffer& bytes,
                                             pagi_exec::Request& request) const;
  void report_rejection(const grpc::ServerContext& context, const char* rpc, const pagi_exec::Request& request,
                        const grpc::Status& status) const;
};

}  // namespace tools_server
