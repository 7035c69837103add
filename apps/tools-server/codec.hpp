// SPDX-License-Identifier: Apache-2.0
// Codec: tools.proto messages <-> library values, and the one place errors become wire statuses.
#pragma once

#include <chrono>
#include <optional>

#include <grpcpp/support/status.h>

#include <pagi_exec/pagi_exec.hpp>

#include "tools.pb.h"

namespace tools_server::codec {

// The wire request becomes a library Request in request_decoder.hpp (decode), from its raw bytes.

/// The time left until an RPC deadline, as a Request::timeout_cap: nullopt when the deadline is
/// further than pagi_exec::max_timeout away (including "no deadline"), at least 1 ms otherwise.
[[nodiscard]] std::optional<std::chrono::milliseconds> timeout_cap(std::chrono::system_clock::time_point deadline,
                                                                   std::chrono::system_clock::time_point now);

/// Why an execution was stopped early, as the service knows it.
enum class StopCause : std::uint8_t {
  none,      ///< not stopped (or stopped by its own time limit)
  client,    ///< the client cancelled or its deadline passed
  shutdown,  ///< the server is shutting down
};

/// THE mapping of a run's result to the wire; fills `response` when the status is OK.
///  - a policy refusal: OK, success=false, exit_code=1, message=reason,
///    stderr_logs[0] = "Policy violation: <reason>", policy_rule;
///  - a command that ran (any exit code, signal, timeout, truncation): OK with in-band fields;
///    a timeout is exit_code 124 with message "execution_timeout";
///  - a call that cannot run as asked (Decision::invalid_request, or its tool's argument error):
///    OK, success=false, exit_code=2, message and stderr_logs[0] = the reason (no prefix);
///  - an execution cancelled early: CANCELLED (client) or UNAVAILABLE (shutdown);
///  - Errc::audit_unavailable: UNAVAILABLE; Errc::resource_exhausted: RESOURCE_EXHAUSTED; every
///    other Errc: INTERNAL; with the error message.
[[nodiscard]] grpc::Status to_proto(const pagi_exec::Result<pagi_exec::Outcome>& result, StopCause stop,
                                    tools::ExecutionResponse& response);

/// An error of the library as a status: Errc::invalid_request is INVALID_ARGUMENT, the rest
/// INTERNAL, with the error's message.
[[nodiscard]] grpc::Status to_status(const pagi_exec::Error& error);

/// An egress run's totals, as ExecutionResponse, ExecutionRecord and ExecutionFinished carry them.
void to_proto(const pagi_exec::EgressSummary& summary, tools::EgressSummary& out);

/// The status of an execution stopped early: CANCELLED (client) or UNAVAILABLE (shutdown).
[[nodiscard]] grpc::Status cancelled_status(const pagi_exec::Outcome& outcome, StopCause stop);

/// HealthCheck's answer: pagi_exec::health_status, the version and pagi_exec::health_message.
[[nodiscard]] tools::HealthCheckResponse to_proto(const pagi_exec::HealthReport& report);

}  // namespace tools_server::codec
