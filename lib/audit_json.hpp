// SPDX-License-Identifier: Apache-2.0
// Audit records <-> JSON Lines, shared by the writer (audit_log.cpp) and the reader (audit_reader.cpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "pagi_exec/audit.hpp"
#include "pagi_exec/error.hpp"
#include "pagi_exec/outcome.hpp"
#include "pagi_exec/request.hpp"

namespace pagi_exec::detail {

/// Which record type to write.
enum class AuditRecordType : std::uint8_t { decision, execution, auth_rejected, egress };

/// The record's "type": "decision", "execution" or "auth_rejected".
[[nodiscard]] constexpr std::string_view to_string(AuditRecordType type) noexcept {
  switch (type) {
    case AuditRecordType::decision: return "decision";
    case AuditRecordType::execution: return "execution";
    case AuditRecordType::auth_rejected: return "auth_rejected";
    case AuditRecordType::egress: return "egress";
  }
  return "unknown";
}

/// The AuditRecordType named `name`; nullopt for anything else.
[[nodiscard]] constexpr std::optional<AuditRecordType> audit_record_type_from_string(std::string_view name) noexcept {
  for (const auto type : {AuditRecordType::decision, AuditRecordType::execution, AuditRecordType::auth_rejected,
                          AuditRecordType::egress}) {
    if (to_string(type) == name) return type;
  }
  return std::nullopt;
}

/// One record as a JSON line ending in '\n', strings capped as `options` says and invalid UTF-8
/// replaced by U+FFFD. `now` is the record's time (the finish time of an execution).
/// Errc::internal if the encoder fails (it should not).
[[nodiscard]] Result<std::string> audit_line(AuditRecordType type, const Request& request, const Outcome& outcome,
                                             std::chrono::system_clock::time_point now, const AuditOptions& options);

/// An "auth_rejected" record as a JSON line: the fields of `request` a decision record has (the
/// twin as claimed), `id` as execution_id (a fresh id: nothing was executed), and the rejection.
[[nodiscard]] Result<std::string> auth_rejected_line(const Request& request, const AuthRejection& rejection,
                                                     const std::string& id, std::chrono::system_clock::time_point now,
                                                     const AuditOptions& options);

/// An "egress" record as a JSON line: one connection attempt of an egress run (its twin and
/// execution id, destination, verdict and rule, bytes each way, duration). `now` is its end.
[[nodiscard]] Result<std::string> egress_line(const EgressConnection& connection,
                                              std::chrono::system_clock::time_point now, const AuditOptions& options);

/// Parses one line (without '\n'); nullopt when it is not an audit record (not JSON, not an object,
/// no known type, no execution_id or time). Never throws (except std::bad_alloc).
[[nodiscard]] std::optional<AuditEntry> audit_entry_from_line(std::string line);

}  // namespace pagi_exec::detail
