// SPDX-License-Identifier: Apache-2.0
// Codec of the history and streaming RPCs: tools.proto messages <-> library values.
#pragma once

#include <grpcpp/support/status.h>

#include <pagi_exec/pagi_exec.hpp>

#include "tools.pb.h"

namespace tools_server::codec {

/// A ListExecutionsRequest as a history query. INVALID_ARGUMENT for an unknown outcome name,
/// a malformed page token or a negative page size.
[[nodiscard]] tl::expected<pagi_exec::HistoryQuery, grpc::Status> from_proto(const tools::ListExecutionsRequest& message);

/// One page of history on the wire; next_page_token is empty on the last page.
void to_proto(const pagi_exec::HistoryPage& page, tools::ListExecutionsResponse& response);

/// One remembered request on the wire (times in RFC 3339, UTC).
[[nodiscard]] tools::ExecutionRecord to_proto(const pagi_exec::ExecutionRecord& record);

/// The `started` event of a stream: the execution id, isolation and the limits in effect.
[[nodiscard]] tools::ExecutionEvent started_event(const pagi_exec::Outcome& outcome, const pagi_exec::Limits& limits);

/// A dry run's answer: the decision, the limits a run would get, the policy revision.
[[nodiscard]] tools::PolicyDecision to_proto(const pagi_exec::Decision& decision, const pagi_exec::Limits& limits,
                                             const std::string& revision, pagi_exec::Isolation isolation);

/// The `finished` event of a stream: a refusal (allowed=false, exit_code 1, reason) or the end
/// of a run (exit code, signal, reason, limit, usage, truncation).
[[nodiscard]] tools::ExecutionEvent finished_event(const pagi_exec::Outcome& outcome);

}  // namespace tools_server::codec
