// SPDX-License-Identifier: Apache-2.0
// ToolExecutorService: decode -> executor.run(request, stop) -> encode, and nothing else.
#include "service.hpp"

#include "history_codec.hpp"
#include "log.hpp"
#include "metrics.hpp"
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

// What a call gets when its work cannot be given a thread: the system is out of them.
grpc::Status no_thread() {
  return {grpc::StatusCode::RESOURCE_EXHAUSTED, "no worker thread is free: TOOLS_MAX_CONCURRENCY + " +
                                                    std::to_string(brief_task_threads) +
                                                    " are busy, or the system refused a new one"};
}

// What a new execution gets once SIGTERM started the drain: UNAVAILABLE, which clients retry
// elsewhere; the running ones finish.
grpc::Status draining() {
  return {grpc::StatusCode::UNAVAILABLE, "the server is draining (shutting down): it takes no new executions; "
                                         "retry on another instance"};
}

}  // namespace

ToolExecutorService::ToolExecutorService(const pagi_exec::Host& host, Cancellations& cancellations, Workers& workers,
                                         const AuthHolder& auth)
    : host_(host), cancellations_(cancellations), workers_(workers), auth_(auth),
      audit_waits_(host.audit_sink() != nullptr &&
                   host.settings().audit.sync == pagi_exec::AuditOptions::Sync::every),
      history_waits_(host.settings().history_store.kind != pagi_exec::StoreSettings::Kind::memory) {}

// The unary calls without an execution answer from grpc's default reactor.
template <class Work>
grpc::ServerUnaryReactor* ToolExecutorService::answer(grpc::CallbackServerContext& context, Work work,
                                                      bool work_waits) {
  auto* reactor = context.DefaultReactor();
  if (!audit_waits_ && !work_waits) {
    reactor->Finish(work());
  } else if (!workers_.run([reactor, work] { reactor->Finish(work()); })) {
    reactor->Finish(no_thread());
  }
  return reactor;
}

// Decoding, authentication and the decision take microseconds: they are done here, and so is a
// request that will not run, by `refuse`. A run goes to a worker (so does everything when the
// audit log syncs each record), which finishes the call.
template <class Call, class Refuse, class Run>
void ToolExecutorService::start(grpc::CallbackServerContext& context, const char* rpc, const grpc::ByteBuffer& bytes,
                                Call& call, Refuse refuse, Run run) {
  if (cancellations_.draining()) return call.finish(draining());
  auto work = [this, &context, rpc, &bytes, &call, refuse, run](bool on_worker) {
    if (auto prepared = prepare(context, rpc, bytes, call.prepared); !prepared.ok()) return call.finish(prepared);
    if (refuse(on_worker)) return;
    if (on_worker) return run();
    if (workers_.run(run)) return;
    call.finish(no_thread());
  };
  if (!audit_waits_) return work(false);
  if (!workers_.run([work] { work(true); })) call.finish(no_thread());
}

// A refusal is answered once its record is kept, by whichever thread keeps it (the history's own,
// when it is durable): no thread waits for it.
grpc::ServerUnaryReactor* ToolExecutorService::RequestExecution(grpc::CallbackServerContext* context,
                                                                const grpc::ByteBuffer* request,
                                                                grpc::ByteBuffer* response) {
  auto* call = new UnaryCall(cancellations_.watch());
  start(
      *context, "RequestExecution", *request, *call,
      [this, call, response](bool /*on_worker*/) {
        return call->prepared.executor->refuse_then(call->prepared.request,
                                                    [this, call, response](const auto& result) {
                                                      call->finish(reply(*call, result, *response));
                                                    });
      },
      [this, context, response, call] { call->finish(execute(*context, *call, *response)); });
  return call;
}

// A refused stream's one event is written by a thread that may wait for the client: never the
// history's. With a durable history that is a worker, or this thread when none is free: a
// refusal is never turned away.
grpc::ServerWriteReactor<grpc::ByteBuffer>* ToolExecutorService::StreamExecution(grpc::CallbackServerContext* context,
                                                                                 const grpc::ByteBuffer* request) {
  auto* call = new StreamCall(*context, cancellations_.watch());
  auto run = [this, context, call] { stream(*context, *call); };
  start(
      *context, "StreamExecution", *request, *call,
      [this, call, run](bool on_worker) {
        if (call->prepared.executor->check(call->prepared.request).allowed) return false;
        if (on_worker || !history_waits_ || !workers_.run(run)) run();
        return true;
      },
      run);
  return call;
}

grpc::ServerUnaryReactor* ToolExecutorService::HealthCheck(grpc::CallbackServerContext* context,
                                                           const google::protobuf::Empty* /*request*/,
                                                           tools::HealthCheckResponse* response) {
  *response = codec::to_proto(host_.health());
  auto* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* ToolExecutorService::CheckPolicy(grpc::CallbackServerContext* context,
                                                           const grpc::ByteBuffer* request,
                                                           grpc::ByteBuffer* response) {
  return answer(*context,
                [this, context, request, response] { return check_policy(*context, *request, *response); });
}

grpc::ServerUnaryReactor* ToolExecutorService::ListExecutions(grpc::CallbackServerContext* context,
                                                              const grpc::ByteBuffer* request,
                                                              grpc::ByteBuffer* response) {
  return answer(
      *context,
      [this, context, request, response] {
        tools::ListExecutionsRequest decoded;
        if (auto status = codec::decode(*request, decoded); !status.ok()) return status;
        tools::ListExecutionsResponse page;
        auto status = list_executions(*context, decoded, page);
        if (status.ok()) *response = to_bytes(page);
        return status;
      },
      true);
}

grpc::ServerUnaryReactor* ToolExecutorService::GetExecution(grpc::CallbackServerContext* context,
                                                            const grpc::ByteBuffer* request,
                                                            grpc::ByteBuffer* response) {
  return answer(
      *context,
      [this, context, request, response] {
        tools::GetExecutionRequest decoded;
        if (auto status = codec::decode(*request, decoded); !status.ok()) return status;
        tools::ExecutionRecord record;
        auto status = get_execution(*context, decoded, record);
        if (status.ok()) *response = to_bytes(record);
        return status;
      },
      true);
}

grpc::Status ToolExecutorService::prepare(const grpc::CallbackServerContext& context, const char* rpc,
                                          const grpc::ByteBuffer& bytes, PreparedRequest& prepared) const {
  if (auto bound = decode_and_bind(context, rpc, bytes, prepared.request); !bound.ok()) return bound;
  prepared.executor = host_.executor();
  return grpc::Status::OK;
}

grpc::Status ToolExecutorService::decode_and_bind(const grpc::ServerContextBase& context, const char* rpc,
                                                  const grpc::ByteBuffer& bytes, pagi_exec::Request& request) const {
  if (auto decoded = codec::decode(bytes, request); !decoded.ok()) {
    if (const auto proven = auth_.current()->authenticate(context); !proven) {
      report_rejection(context, rpc, pagi_exec::Request{}, proven.error());
      return proven.error();
    }
    log(LogLevel::warn, "unparseable_request",
        {LogField::word("rpc", rpc), LogField::text("peer", context.peer()),
         LogField::text("reason", decoded.error_message(), 256)});
    return decoded;
  }
  return bind(context, rpc, request);
}

grpc::Status ToolExecutorService::bind(const grpc::ServerContextBase& context, const char* rpc,
                                       pagi_exec::Request& request) const {
  auto status = auth_.current()->bind(context, request);
  if (!status.ok()) report_rejection(context, rpc, request, status);
  return status;
}

grpc::Status ToolExecutorService::bind(const grpc::ServerContextBase& context, const char* rpc,
                                       std::string& twin_id) const {
  auto status = auth_.current()->bind(context, twin_id);
  if (!status.ok()) report_rejection(context, rpc, pagi_exec::Request{.twin_id = twin_id}, status);
  return status;
}

// One log line and one audit record per refused credential, within the rejection budget (the
// rest are counted, and the next line and record say how many); the credential never appears.
void ToolExecutorService::report_rejection(const grpc::ServerContextBase& context, const char* rpc,
                                           const pagi_exec::Request& request, const grpc::Status& status) const {
  const auto unrecorded = rejections_.take();
  if (!unrecorded) return;
  pagi_exec::AuthRejection rejection{.peer = context.peer(), .rpc = rpc,
                                     .status = status_name(status.error_code()),
                                     .reason = status.error_message()};
  if (*unrecorded > 0) {
    rejection.reason += " (and " + std::to_string(*unrecorded) +
                        " rejections since the last one recorded, not recorded one by one: at most " +
                        std::to_string(RejectionBudget::default_per_second) + " a second are)";
  }
  log(LogLevel::warn, "auth_rejected",
      {LogField::word("rpc", rejection.rpc), LogField::text("peer", rejection.peer),
       LogField::text("twin", request.twin_id), LogField::text("tool", request.tool),
       LogField::word("status", rejection.status),
       LogField::number("unrecorded_before", static_cast<std::int64_t>(*unrecorded)),
       LogField::text("reason", rejection.reason, 256)});
  if (const auto& audit = host_.audit_sink()) (void)audit->rejected(request, rejection);  // a failure is logged by the sink
}

grpc::Status ToolExecutorService::execute(const grpc::CallbackServerContext& context, UnaryCall& call,
                                          grpc::ByteBuffer& response) const {
  auto& request = call.prepared.request;
  // The RPC deadline caps the execution: a result nobody waits for is not worth computing.
  request.timeout_cap = codec::timeout_cap(context.deadline(), std::chrono::system_clock::now());
  return reply(call, call.prepared.executor->run(request, call.stop().token()), response);
}

grpc::Status ToolExecutorService::reply(const UnaryCall& call, const pagi_exec::Result<pagi_exec::Outcome>& result,
                                        grpc::ByteBuffer& response) const {
  log_request(call.prepared.request, result);
  server_metrics().request_done(result);
  tools::ExecutionResponse answer;
  auto status = codec::to_proto(result, call.stop().cause(), answer);
  if (status.ok()) response = to_bytes(answer);
  return status;
}

grpc::Status ToolExecutorService::check_policy(const grpc::CallbackServerContext& context,
                                               const grpc::ByteBuffer& request, grpc::ByteBuffer& response) const {
  pagi_exec::Request decoded;
  if (auto bound = decode_and_bind(context, "CheckPolicy", request, decoded); !bound.ok()) return bound;
  const auto executor = host_.executor();
  const auto decision = executor->check(decoded);
  response = to_bytes(codec::to_proto(decision, executor->limits_for(decision), executor->policy().revision(),
                                      executor->sandbox().isolation()));
  return grpc::Status::OK;
}

grpc::Status ToolExecutorService::list_executions(const grpc::CallbackServerContext& context,
                                                  const tools::ListExecutionsRequest& request,
                                                  tools::ListExecutionsResponse& response) const {
  auto query = codec::from_proto(request);
  if (!query) return query.error();
  // An authenticated twin sees its own history only.
  if (auto bound = bind(context, "ListExecutions", query->twin_id); !bound.ok()) return bound;
  const auto page = host_.executor()->history().query(*query);
  if (!page) return {grpc::StatusCode::UNAVAILABLE, "the execution history cannot be read: " + page.error().message()};
  codec::to_proto(*page, response);
  return grpc::Status::OK;
}

grpc::Status ToolExecutorService::get_execution(const grpc::CallbackServerContext& context,
                                                const tools::GetExecutionRequest& request,
                                                tools::ExecutionRecord& response) const {
  const auto proven = auth_.current()->authenticate(context);
  if (!proven) {
    report_rejection(context, "GetExecution", pagi_exec::Request{}, proven.error());
    return proven.error();
  }
  const auto found = host_.executor()->history().find(request.execution_id());
  if (!found) return {grpc::StatusCode::UNAVAILABLE, "the execution history cannot be read: " + found.error().message()};
  const auto& record = *found;
  if (!record || !pagi_exec::may_see(*record, *proven)) {
    return {grpc::StatusCode::NOT_FOUND, "no execution '" + request.execution_id() + "' in the history"};
  }
  // Like a page, one record must fit a default client's 4 MiB message.
  response = codec::to_proto(pagi_exec::fitted(*record, pagi_exec::HistoryQuery::default_max_page_bytes));
  return grpc::Status::OK;
}

void ToolExecutorService::stream(const grpc::CallbackServerContext& context, StreamCall& call) const {
  auto& request = call.prepared.request;
  const auto& executor = call.prepared.executor;
  request.timeout_cap = codec::timeout_cap(context.deadline(), std::chrono::system_clock::now());
  const pagi_exec::RunHooks hooks{
      .started = [&](const pagi_exec::Outcome& outcome) {
        const auto limits = executor->limits_for(outcome.decision, request.timeout_cap);
        call.wait_no_later_than(std::chrono::steady_clock::now() + limits.timeout + StreamCall::stall_grace);
        (void)call.write(to_bytes(codec::started_event(outcome, limits)));
      },
      .output = [&](pagi_exec::OutputStream stream, std::string_view chunk) {
        tools::ExecutionEvent event;
        auto* data = stream == pagi_exec::OutputStream::out ? event.mutable_stdout() : event.mutable_stderr();
        data->set_data(chunk.data(), chunk.size());
        return call.write(to_bytes(event));  // false: the client is gone, which stops the run
      },
  };
  const auto result = executor->run(request, call.stop().token(), hooks);
  log_request(request, result);
  server_metrics().request_done(result);
  const auto finish = [&](grpc::Status status) {
    if (call.stalled()) {
      log(LogLevel::warn, "stream_stalled",
          {LogField::text("twin", request.twin_id), LogField::text("execution_id", result ? result->execution_id : ""),
           LogField::text("peer", context.peer())});
    }
    call.finish(std::move(status));
  };
  if (!result) return finish(codec::to_status(result.error()));
  if (result->cancelled) return finish(codec::cancelled_status(*result, call.stop().cause()));
  if (result->decision.allowed && !result->ran && !result->err.lines.empty()) {
    tools::ExecutionEvent why;  // a command that could not start (127, 126) says why on stderr
    for (const auto& line : result->err.lines) why.mutable_stderr()->mutable_data()->append(line + "\n");
    (void)call.write(to_bytes(why));
  }
  (void)call.write(to_bytes(codec::finished_event(*result)));
  finish(grpc::Status::OK);
}

}  // namespace tools_server
