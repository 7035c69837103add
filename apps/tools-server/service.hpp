// SPDX-License-Identifier: Apache-2.0
// ToolExecutorService: the gRPC service of tools.proto, adapting each RPC to one Executor call.
#pragma once

#include <grpcpp/grpcpp.h>

#include <pagi_exec/pagi_exec.hpp>

#include "auth.hpp"
#include "cancellation.hpp"
#include "codec.hpp"
#include "rejection_budget.hpp"
#include "stream_call.hpp"
#include "tools.grpc.pb.h"
#include "unary_call.hpp"
#include "workers.hpp"

namespace tools_server {

// grpc++'s callback API: every method answers from a reactor, so no call waits for, or is refused
// for want of, a server thread. RequestExecution, StreamExecution, CheckPolicy and the history
// calls take the request's raw bytes: a request the server cannot parse (not protobuf, invalid UTF-8 in a string
// field) is INVALID_ARGUMENT naming the field, with one log line, instead of grpc++'s INTERNAL
// with no message.
using GeneratedService = tools::ToolExecutorService;
using CallbackBase = GeneratedService::WithRawCallbackMethod_RequestExecution<
    GeneratedService::WithCallbackMethod_HealthCheck<GeneratedService::WithRawCallbackMethod_ListExecutions<
        GeneratedService::WithRawCallbackMethod_GetExecution<GeneratedService::WithRawCallbackMethod_StreamExecution<
            GeneratedService::WithRawCallbackMethod_CheckPolicy<GeneratedService::Service>>>>>>;

/// tools.proto's ToolExecutorService. Each RPC authenticates, decodes, runs the Executor with a
/// stop token tied to the call, encodes and answers.
/// What only computes (HealthCheck, CheckPolicy, the history, a refused or invalid request) is
/// answered on grpc's thread at once; what waits (an allowed execution, a record the audit log
/// syncs to disk) runs on a worker thread, which finishes the call.
/// Once the server drains (Cancellations::begin_drain), new executions get UNAVAILABLE at once.
/// No policy, limits or defaults live here. Thread-safe: one instance serves every call.
class ToolExecutorService final : public CallbackBase {
 public:
  /// `host`, `cancellations`, `workers` and `auth` must outlive the service. The host's audit sink
  /// (if any) also records rejected credentials.
  ToolExecutorService(const pagi_exec::Host& host, Cancellations& cancellations, Workers& workers,
                      const AuthHolder& auth);

  /// Decides and runs one request; see codec::to_proto for what the client gets back.
  grpc::ServerUnaryReactor* RequestExecution(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                             grpc::ByteBuffer* response) override;

  /// "healthy" or "degraded" (with why), the version, and the isolation, safe mode and sandbox in effect.
  grpc::ServerUnaryReactor* HealthCheck(grpc::CallbackServerContext* context, const google::protobuf::Empty* request,
                                        tools::HealthCheckResponse* response) override;

  /// A page of the history (allowed and refused requests), newest first, filtered.
  grpc::ServerUnaryReactor* ListExecutions(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                           grpc::ByteBuffer* response) override;

  /// One remembered request by execution id; NOT_FOUND when it is no longer (or never was) held.
  grpc::ServerUnaryReactor* GetExecution(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                         grpc::ByteBuffer* response) override;

  /// Runs one request and streams it: `started`, then stdout/stderr chunks as they are
  /// produced, then `finished` (a refusal or a call that cannot run as asked is a single
  /// `finished`). A slow client slows the command (see StreamCall); a client that goes away
  /// ends the whole process tree.
  grpc::ServerWriteReactor<grpc::ByteBuffer>* StreamExecution(grpc::CallbackServerContext* context,
                                                              const grpc::ByteBuffer* request) override;

  /// A dry run: the decision (Executor::check, the same a run makes), the rule, the limits a run
  /// would get; nothing runs, nothing is created.
  grpc::ServerUnaryReactor* CheckPolicy(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                        grpc::ByteBuffer* response) override;

 private:
  const pagi_exec::Host& host_;  // each RPC runs on one snapshot of its executor
  Cancellations& cancellations_;
  Workers& workers_;
  const AuthHolder& auth_;  // every RPC but HealthCheck proves its twin first
  // The audit log syncs each record to disk before answering (TOOLS_AUDIT_SYNC=every): every
  // call that may write one (all but HealthCheck) then runs on a worker.
  bool audit_waits_;
  // The history is a file or a database (TOOLS_HISTORY sqlite or postgresql): a refusal's record
  // is written before its answer, so a refused stream, which waits for its record, runs on a
  // worker, not on one of grpc's few threads. (A unary refusal waits for nothing: the history's
  // thread finishes it.)
  bool history_waits_;

  // The default reactor, finished with the status of `work` (a call without an execution), which
  // runs here, or on a worker when the audit log would make it wait or `work` itself may wait (a
  // query of the execution store, which may be a database across the network).
  template <class Work>
  grpc::ServerUnaryReactor* answer(grpc::CallbackServerContext& context, Work work, bool work_waits = false);
  // Prepares an execution's request; `refuse(on_worker)` answers it when it will not run (and
  // says so), otherwise `run` goes to a worker (everything does when the audit log would make it
  // wait). `Call` is UnaryCall or StreamCall.
  template <class Call, class Refuse, class Run>
  void start(grpc::CallbackServerContext& context, const char* rpc, const grpc::ByteBuffer& bytes, Call& call,
             Refuse refuse, Run run);

  // The raw request as a library Request bound to the proven twin, and the executor it runs on.
  [[nodiscard]] grpc::Status prepare(const grpc::CallbackServerContext& context, const char* rpc,
                                     const grpc::ByteBuffer& bytes, PreparedRequest& prepared) const;
  // What the client gets for `result` (logged and counted).
  [[nodiscard]] grpc::Status reply(const UnaryCall& call, const pagi_exec::Result<pagi_exec::Outcome>& result,
                                   grpc::ByteBuffer& response) const;
  // The execution of a prepared request, and its answer.
  [[nodiscard]] grpc::Status execute(const grpc::CallbackServerContext& context, UnaryCall& call,
                                     grpc::ByteBuffer& response) const;
  void stream(const grpc::CallbackServerContext& context, StreamCall& call) const;
  [[nodiscard]] grpc::Status check_policy(const grpc::CallbackServerContext& context, const grpc::ByteBuffer& request,
                                          grpc::ByteBuffer& response) const;
  [[nodiscard]] grpc::Status list_executions(const grpc::CallbackServerContext& context,
                                             const tools::ListExecutionsRequest& request,
                                             tools::ListExecutionsResponse& response) const;
  [[nodiscard]] grpc::Status get_execution(const grpc::CallbackServerContext& context,
                                           const tools::GetExecutionRequest& request,
                                           tools::ExecutionRecord& response) const;

  // Authenticates the call and binds `request.twin_id` to the proven twin (Authenticator::bind);
  // a refused credential is logged and audited before its status is returned.
  [[nodiscard]] grpc::Status bind(const grpc::ServerContextBase& context, const char* rpc,
                                  pagi_exec::Request& request) const;
  [[nodiscard]] grpc::Status bind(const grpc::ServerContextBase& context, const char* rpc, std::string& twin_id) const;
  // The raw request as a library Request, then bound as above. A request that does not parse is
  // logged in one line; an unauthenticated caller gets UNAUTHENTICATED whatever it sent.
  [[nodiscard]] grpc::Status decode_and_bind(const grpc::ServerContextBase& context, const char* rpc,
                                             const grpc::ByteBuffer& bytes, pagi_exec::Request& request) const;
  void report_rejection(const grpc::ServerContextBase& context, const char* rpc, const pagi_exec::Request& request,
                        const grpc::Status& status) const;

  mutable RejectionBudget rejections_;  // which refused credentials are logged and audited one by one
};

}  // namespace tools_server
