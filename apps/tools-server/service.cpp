// SPDX-License-Identifier: Apache-2.0
// ToolExecutorService: decode -> executor.run(request, stop) -> encode, and nothing else.
#include "service.hpp"

#include <functional>

#include "history_codec.hpp"
#include "log.hpp"
#include "request_decoder.hpp"

namespace tools_server {
namespace {

const char* status_name(grpc::StatusCode code) {
  if (code == grpc::StatusCode::UNAUTHENTICATED) return "UNAUTHENTICATED";
  if (code == grpc::StatusCode::PERMISSION_DENIED) return "PERMISSION_DENIED";
  return "REJECTED";
}

// `message` as the bytes of a raw reply.
template <class Message>
grpc::ByteBuffer to_bytes(const Message& message) {
  grpc::ByteBuffer bytes;
  bool own_buffer = false;
  (void)grpc::SerializationTraits<Message>::Serialize(message, &bytes, &own_buffer);  // fails only past 2 GiB
  return bytes;
}

// A unary method of this service taking `Request` and answering `Response`.
template <class Request, class Response>
grpc::internal::RpcServiceMethod* unary(const char* path, ToolExecutorService* service,
                                        grpc::Status (ToolExecutorService::*method)(grpc::ServerContext*,
                                                                                    const Request*, Response*)) {
  return new grpc::internal::RpcServiceMethod(
      path, grpc::internal::RpcMethod::NORMAL_RPC,
      new grpc::internal::RpcMethodHandler<ToolExecutorService, Request, Response>(std::mem_fn(method), service));
}

}  // namespace

// Why the service registers its methods itself: grpc++ parses a request before the handler runs,
// and the generated service cannot be told to hand over the bytes of a synchronous method instead
// (its "generic" and "raw" variants need an asynchronous or callback service). So the six methods
// of tools.proto are registered here, under the paths the generated code uses, with the same
// synchronous handlers it instantiates: typed for the three without an ExecutionRequest, over
// ByteBuffer (whose deserialisation cannot fail) for the three with one, which decode it
// themselves (request_decoder.hpp). All run on the same threads with the same ServerContext.
// The e2e tests call every method through the generated stub, so a wrong path cannot go unseen.
ToolExecutorService::ToolExecutorService(const pagi_exec::Host& host, CancellationWatcher& watcher,
                                         const AuthHolder& auth)
    : host_(host), watcher_(watcher), auth_(auth) {
  using grpc::ByteBuffer;
  AddMethod(unary("/tools.ToolExecutorService/RequestExecution", this, &ToolExecutorService::request_execution));
  AddMethod(unary("/tools.ToolExecutorService/HealthCheck", this, &ToolExecutorService::HealthCheck));
  AddMethod(unary("/tools.ToolExecutorService/ListExecutions", this, &ToolExecutorService::ListExecutions));
  AddMethod(unary("/tools.ToolExecutorService/GetExecution", this, &ToolExecutorService::GetExecution));
  AddMethod(new grpc::internal::RpcServiceMethod(
      "/tools.ToolExecutorService/StreamExecution", grpc::internal::RpcMethod::SERVER_STREAMING,
      new grpc::internal::ServerStreamingHandler<ToolExecutorService, ByteBuffer, ByteBuffer>(
          std::mem_fn(&ToolExecutorService::stream_execution), this)));
  AddMethod(unary("/tools.ToolExecutorService/CheckPolicy", this, &ToolExecutorService::check_policy));
}

grpc::Status ToolExecutorService::decode_and_bind(grpc::ServerContext& context, const char* rpc,
                                                  const grpc::ByteBuffer& bytes, pagi_exec::Request& request) const {
  if (auto decoded = codec::decode(bytes, request); !decoded.ok()) {
    if (const auto proven = auth_.current()->authenticate(context); !proven) {
      report_rejection(context, rpc, pagi_exec::Request{}, proven.error());
      return proven.error();
    }
    log(LogLevel::warn, std::string("unparseable_request rpc=") + rpc + " peer=" + log_quote(context.peer()) +
                            " reason=" + log_quote(decoded.error_message(), 256));
    return decoded;
  }
  return bind(context, rpc, request);
}

grpc::Status ToolExecutorService::bind(grpc::ServerContext& context, const char* rpc,
                                       pagi_exec::Request& request) const {
  auto status = auth_.current()->bind(context, request);
  if (!status.ok()) report_rejection(context, rpc, request, status);
  return status;
}

grpc::Status ToolExecutorService::bind(grpc::ServerContext& context, const char* rpc, std::string& twin_id) const {
  auto status = auth_.current()->bind(context, twin_id);
  if (!status.ok()) report_rejection(context, rpc, pagi_exec::Request{.twin_id = twin_id}, status);
  return status;
}

// One log line and one audit record per refused credential; the credential itself never appears.
void ToolExecutorService::report_rejection(const grpc::ServerContext& context, const char* rpc,
                                           const pagi_exec::Request& request, const grpc::Status& status) const {
  const pagi_exec::AuthRejection rejection{.peer = context.peer(), .rpc = rpc,
                                           .status = status_name(status.error_code()),
                                           .reason = status.error_message()};
  log(LogLevel::warn, "auth_rejected rpc=" + rejection.rpc + " peer=" + log_quote(rejection.peer) +
                          " twin=" + log_quote(request.twin_id) + " tool=" + log_quote(request.tool) +
                          " status=" + rejection.status + " reason=" + log_quote(rejection.reason, 256));
  if (const auto& audit = host_.audit_sink()) (void)audit->rejected(request, rejection);  // a failure is logged by the sink
}

grpc::Status ToolExecutorService::request_execution(grpc::ServerContext* context, const grpc::ByteBuffer* request,
                                                    grpc::ByteBuffer* response) {
  pagi_exec::Request decoded;
  if (auto bound = decode_and_bind(*context, "RequestExecution", *request, decoded); !bound.ok()) return bound;
  // The RPC deadline caps the execution: a result nobody waits for is not worth computing.
  decoded.timeout_cap = codec::timeout_cap(context->deadline(), std::chrono::system_clock::now());
  const auto watch = watcher_.watch(*context);
  const auto result = host_.executor()->run(decoded, watch.token());
  log_request(decoded, result);
  tools::ExecutionResponse answer;
  auto status = codec::to_proto(result, watch.cause(), answer);
  if (status.ok()) *response = to_bytes(answer);
  return status;
}

grpc::Status ToolExecutorService::HealthCheck(grpc::ServerContext* /*context*/,
                                              const google::protobuf::Empty* /*request*/,
                                              tools::HealthCheckResponse* response) {
  *response = codec::to_proto(host_.health());
  return grpc::Status::OK;
}

grpc::Status ToolExecutorService::check_policy(grpc::ServerContext* context, const grpc::ByteBuffer* request,
                                               grpc::ByteBuffer* response) {
  pagi_exec::Request decoded;
  if (auto bound = decode_and_bind(*context, "CheckPolicy", *request, decoded); !bound.ok()) return bound;
  const auto executor = host_.executor();
  const auto decision = executor->check(decoded);
  *response = to_bytes(codec::to_proto(decision, executor->limits_for(decision), executor->policy().revision(),
                                       executor->sandbox().isolation()));
  return grpc::Status::OK;
}

grpc::Status ToolExecutorService::ListExecutions(grpc::ServerContext* context,
                                                 const tools::ListExecutionsRequest* request,
                                                 tools::ListExecutionsResponse* response) {
  auto query = codec::from_proto(*request);
  if (!query) return query.error();
  // An authenticated twin sees its own history only.
  if (auto bound = bind(*context, "ListExecutions", query->twin_id); !bound.ok()) return bound;
  codec::to_proto(host_.executor()->history().query(*query), *response);
  return grpc::Status::OK;
}

grpc::Status ToolExecutorService::GetExecution(grpc::ServerContext* context,
                                               const tools::GetExecutionRequest* request,
                                               tools::ExecutionRecord* response) {
  const auto proven = auth_.current()->authenticate(*context);
  if (!proven) {
    report_rejection(*context, "GetExecution", pagi_exec::Request{}, proven.error());
    return proven.error();
  }
  const auto record = host_.executor()->history().find(request->execution_id());
  if (!record || !pagi_exec::may_see(*record, *proven)) {
    return {grpc::StatusCode::NOT_FOUND, "no execution '" + request->execution_id() + "' in the history"};
  }
  // Like a page, one record must fit a default client's 4 MiB message.
  *response = codec::to_proto(pagi_exec::fitted(*record, pagi_exec::HistoryQuery::default_max_page_bytes));
  return grpc::Status::OK;
}

grpc::Status ToolExecutorService::stream_execution(grpc::ServerContext* context, const grpc::ByteBuffer* request,
                                                   grpc::ServerWriter<grpc::ByteBuffer>* writer) {
  pagi_exec::Request decoded;
  if (auto bound = decode_and_bind(*context, "StreamExecution", *request, decoded); !bound.ok()) return bound;
  decoded.timeout_cap = codec::timeout_cap(context->deadline(), std::chrono::system_clock::now());
  const auto watch = watcher_.watch(*context);
  const auto executor = host_.executor();
  const pagi_exec::RunHooks hooks{
      .started = [&](const pagi_exec::Outcome& outcome) {
        (void)writer->Write(to_bytes(codec::started_event(outcome, executor->limits_for(outcome.decision, decoded.timeout_cap))));
      },
      .output = [&](pagi_exec::OutputStream stream, std::string_view chunk) {
        tools::ExecutionEvent event;
        auto* data = stream == pagi_exec::OutputStream::out ? event.mutable_stdout() : event.mutable_stderr();
        data->set_data(chunk.data(), chunk.size());
        return writer->Write(to_bytes(event));  // false: the client is gone, which stops the run
      },
  };
  const auto result = executor->run(decoded, watch.token(), hooks);
  log_request(decoded, result);
  if (!result) return codec::to_status(result.error());
  if (result->cancelled) return codec::cancelled_status(*result, watch.cause());
  if (result->decision.allowed && !result->ran && !result->err.lines.empty()) {
    tools::ExecutionEvent why;  // a command that could not start (127, 126) says why on stderr
    for (const auto& line : result->err.lines) why.mutable_stderr()->mutable_data()->append(line + "\n");
    (void)writer->Write(to_bytes(why));
  }
  (void)writer->Write(to_bytes(codec::finished_event(*result)));
  return grpc::Status::OK;
}

}  // namespace tools_server
