// SPDX-License-Identifier: Apache-2.0
// One call of each kind, and how its answer is classified.
#include "workload.hpp"

#include <google/protobuf/empty.pb.h>

#include <numeric>

namespace pagi_load {
namespace {

// The wire contract marks a refusal with this first stderr line (README, "What a response means").
constexpr std::string_view policy_violation_prefix = "Policy violation: ";

tools::ExecutionRequest make_request(const std::string& twin, const std::string& command,
                                     const std::vector<std::string>& args) {
  tools::ExecutionRequest request;
  request.set_command(command);
  for (const auto& arg : args) request.add_args(arg);
  request.set_twin_id(twin);
  request.set_job_id("pagi-load");
  request.set_namespace_("bench");
  return request;
}

Outcome outcome_of(const tools::ExecutionResponse& response) {
  if (response.timed_out()) return Outcome::timed_out;
  if (response.success()) return Outcome::succeeded;
  if (response.stderr_logs_size() > 0 && response.stderr_logs(0).starts_with(policy_violation_prefix)) {
    return Outcome::refused;
  }
  return Outcome::failed;
}

Outcome outcome_of(const tools::ExecutionFinished& finished) {
  if (!finished.allowed()) return Outcome::refused;
  if (finished.timed_out()) return Outcome::timed_out;
  return finished.success() ? Outcome::succeeded : Outcome::failed;
}

}  // namespace

std::vector<Kind> make_schedule(const Weights& weights) {
  const long total = std::accumulate(weights.begin(), weights.end(), 0L);
  std::array<long, kind_count> credit{};
  std::vector<Kind> schedule;
  schedule.reserve(static_cast<std::size_t>(total));
  for (long n = 0; n < total; ++n) {
    std::size_t best = 0;
    for (std::size_t k = 0; k < kind_count; ++k) {
      credit[k] += weights[k];
      if (credit[k] > credit[best]) best = k;
    }
    credit[best] -= total;
    schedule.push_back(static_cast<Kind>(best));
  }
  return schedule;
}

Workload::Workload(std::shared_ptr<grpc::Channel> channel, const Calls& calls, bool stream,
                   std::chrono::milliseconds deadline)
    : stub_(tools::ToolExecutorService::NewStub(std::move(channel))),
      token_(calls.token),
      stream_(stream),
      deadline_(deadline) {
  const auto at = [](Kind kind) { return static_cast<std::size_t>(kind); };
  requests_[at(Kind::allowed)] = make_request(calls.twin, calls.command, calls.args);
  requests_[at(Kind::refused)] = make_request(calls.refused_twin, calls.command, calls.args);
  requests_[at(Kind::failing)] = make_request(calls.twin, "sh", {"-c", "exit 3"});
  requests_[at(Kind::timeout)] = make_request(calls.twin, "sleep", {"3600"});
  // One long line through tr: the same bytes as `yes`, without millions of one-byte lines to encode.
  requests_[at(Kind::flood)] = make_request(
      calls.twin, "sh", {"-c", "head -c " + std::to_string(calls.flood_bytes) + " /dev/zero | tr '\\0' x"});
  requests_[at(Kind::check)] = requests_[at(Kind::allowed)];
}

Sample Workload::call(Kind kind) {
  const auto start = std::chrono::steady_clock::now();
  const auto& request = requests_[static_cast<std::size_t>(kind)];
  auto answer = [&] {
    switch (kind) {
      case Kind::health: return health();
      case Kind::check: return check(request);
      case Kind::allowed:
      case Kind::refused:
      case Kind::failing:
      case Kind::timeout:
      case Kind::flood:
        return stream_ ? execute_streamed(request) : execute(request);
    }
    return execute(request);
  }();
  const auto latency = std::chrono::steady_clock::now() - start;
  if (!answer.status.ok()) return {kind, answer.status.error_code(), Outcome::rpc_error, std::nullopt, latency};
  return {kind, grpc::StatusCode::OK, answer.outcome, answer.exit_code, latency};
}

void Workload::prepare(grpc::ClientContext& context) const {
  context.set_deadline(std::chrono::system_clock::now() + deadline_);
  if (!token_.empty()) context.AddMetadata("authorization", "Bearer " + token_);
}

Workload::Answer Workload::execute(const tools::ExecutionRequest& request) {
  grpc::ClientContext context;
  prepare(context);
  tools::ExecutionResponse response;
  const auto status = stub_->RequestExecution(&context, request, &response);
  return {status, outcome_of(response), response.exit_code()};
}

// Reads every event, as a client showing the output live would.
Workload::Answer Workload::execute_streamed(const tools::ExecutionRequest& request) {
  grpc::ClientContext context;
  prepare(context);
  auto reader = stub_->StreamExecution(&context, request);
  tools::ExecutionEvent event;
  Answer answer{{}, Outcome::incomplete, std::nullopt};
  while (reader->Read(&event)) {
    if (!event.has_finished()) continue;
    answer.outcome = outcome_of(event.finished());
    answer.exit_code = event.finished().exit_code();
  }
  answer.status = reader->Finish();
  return answer;
}

Workload::Answer Workload::health() {
  grpc::ClientContext context;
  prepare(context);
  tools::HealthCheckResponse response;
  const auto status = stub_->HealthCheck(&context, google::protobuf::Empty{}, &response);
  return {status, Outcome::succeeded, std::nullopt};
}

Workload::Answer Workload::check(const tools::ExecutionRequest& request) {
  grpc::ClientContext context;
  prepare(context);
  tools::PolicyDecision decision;
  const auto status = stub_->CheckPolicy(&context, request, &decision);
  return {status, decision.allowed() ? Outcome::succeeded : Outcome::refused, std::nullopt};
}

}  // namespace pagi_load
