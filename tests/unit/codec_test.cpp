// SPDX-License-Identifier: Apache-2.0
// Unit: the codec without a server: a run's result and the health report as the client sees
// them, errors as statuses, the deadline as a timeout cap, and decode on good and bad bytes.
#include <doctest/doctest.h>

#include <string>

#include "codec.hpp"
#include "request_decoder.hpp"
#include "grpc_bytes.hpp"
#include "tools.pb.h"

using namespace tools_server;

namespace {

// A refusal as the executor returns it: exit 1 and the reason as message (the codec adds nothing).
pagi_exec::Outcome refused() {
  pagi_exec::Outcome outcome;
  outcome.execution_id = "exec-1";
  outcome.decision = {.allowed = false, .reason = "twin 'twin-x' is not granted 'rm'", .rule = "default_deny"};
  outcome.exit_code = 1;
  outcome.message = outcome.decision.reason;
  return outcome;
}

pagi_exec::Outcome ran(int exit_code) {
  pagi_exec::Outcome outcome;
  outcome.execution_id = "exec-2";
  outcome.decision = {.allowed = true, .reason = "granted", .rule = "twins.twin-a.allow[echo]"};
  outcome.ran = true;
  outcome.exit_code = exit_code;
  outcome.out.lines = {"hello"};
  outcome.message = "Execution completed (elapsed_ms=3)";
  outcome.isolation = pagi_exec::Isolation::bwrap;
  return outcome;
}

}  // namespace

TEST_SUITE("codec") {
  TEST_CASE("a refusal is OK in-band: success false, exit 1, the reason, 'Policy violation: ' on stderr") {
    tools::ExecutionResponse response;
    const auto status = codec::to_proto(refused(), codec::StopCause::none, response);
    REQUIRE(status.ok());
    CHECK_FALSE(response.success());
    CHECK(response.exit_code() == 1);
    CHECK(response.message() == "twin 'twin-x' is not granted 'rm'");
    REQUIRE(response.stderr_logs_size() == 1);
    CHECK(response.stderr_logs(0) == "Policy violation: twin 'twin-x' is not granted 'rm'");
    CHECK(response.policy_rule() == "default_deny");
    CHECK(response.execution_id() == "exec-1");
  }

  TEST_CASE("a command that ran is OK with its exit code, output and isolation") {
    tools::ExecutionResponse response;
    REQUIRE(codec::to_proto(ran(0), codec::StopCause::none, response).ok());
    CHECK(response.success());
    CHECK(response.exit_code() == 0);
    REQUIRE(response.stdout_logs_size() == 1);
    CHECK(response.stdout_logs(0) == "hello");
    CHECK(response.isolation() == "bwrap");
    CHECK(response.message() == "Execution completed (elapsed_ms=3)");
    tools::ExecutionResponse failed;
    REQUIRE(codec::to_proto(ran(3), codec::StopCause::none, failed).ok());
    CHECK_FALSE(failed.success());
    CHECK(failed.exit_code() == 3);
  }

  TEST_CASE("a cancelled run is CANCELLED for the client, UNAVAILABLE at shutdown") {
    auto outcome = ran(137);
    outcome.cancelled = true;
    tools::ExecutionResponse response;
    CHECK(codec::to_proto(outcome, codec::StopCause::client, response).error_code() == grpc::StatusCode::CANCELLED);
    CHECK(codec::to_proto(outcome, codec::StopCause::shutdown, response).error_code() == grpc::StatusCode::UNAVAILABLE);
  }

  TEST_CASE("library errors become statuses") {
    using pagi_exec::Errc;
    const auto status_of = [](Errc code) { return codec::to_status(pagi_exec::Error::make(code, "why")); };
    CHECK(status_of(Errc::invalid_request).error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(status_of(Errc::audit_unavailable).error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(status_of(Errc::resource_exhausted).error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
    CHECK(status_of(Errc::io).error_code() == grpc::StatusCode::INTERNAL);
    CHECK(status_of(Errc::io).error_message() == "io: why");
    tools::ExecutionResponse response;
    const pagi_exec::Result<pagi_exec::Outcome> error = tl::unexpected(pagi_exec::Error::make(Errc::resource_exhausted, "full"));
    CHECK(codec::to_proto(error, codec::StopCause::none, response).error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  }

  TEST_CASE("a deadline caps the timeout; none, or one past the longest timeout, does not") {
    const auto now = std::chrono::system_clock::now();
    CHECK_FALSE(codec::timeout_cap(std::chrono::system_clock::time_point::max(), now));
    CHECK_FALSE(codec::timeout_cap(now + pagi_exec::max_timeout, now));
    CHECK(codec::timeout_cap(now + std::chrono::seconds(2), now) == std::chrono::milliseconds(2000));
    CHECK(codec::timeout_cap(now - std::chrono::seconds(1), now) == std::chrono::milliseconds(1));
  }

  TEST_CASE("HealthCheck: healthy or degraded, the version, the original's sentence first") {
    pagi_exec::HealthReport report{.requested = std::nullopt, .effective = pagi_exec::Isolation::native,
                                   .isolation_reason = "auto: native works here"};
    auto response = codec::to_proto(report);
    CHECK(response.status() == "healthy");
    CHECK(response.version() == pagi_exec::version);
    CHECK(response.message().rfind("Tool executor service is operational; isolation=native (auto: native works here) "
                                   "safe_mode=false policy=builtin",
                                   0) == 0);
    report.reload_error = "TOOLS_POLICY_FILE / --policy: bad";
    response = codec::to_proto(report);
    CHECK(response.status() == "degraded");
    CHECK(response.message().rfind("Tool executor service is operational but degraded (last policy reload failed", 0) == 0);
  }

  TEST_CASE("decode: bytes that are no ExecutionRequest are INVALID_ARGUMENT, a good one decodes") {
    pagi_exec::Request request;
    const auto bad = codec::decode(test_support::bytes_of("\xff\xff\xff"), request);
    CHECK(bad.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(bad.error_message().find("is not a valid tools.ExecutionRequest") != std::string::npos);
    tools::ExecutionRequest message;
    message.set_command("echo");
    message.set_twin_id("twin-a");
    REQUIRE(codec::decode(test_support::bytes_of(message.SerializeAsString()), request).ok());
    CHECK(request.tool == "echo");
    CHECK(request.twin_id == "twin-a");
    CHECK_FALSE(request.authenticated_twin);
  }
}
