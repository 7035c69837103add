// SPDX-License-Identifier: Apache-2.0
// Audit records <-> JSON with nlohmann/json; no escaping by hand.
#include "audit_json.hpp"

#include "sha256.hpp"

#include <algorithm>
#include <cstdio>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace pagi_exec {

using Clock = std::chrono::system_clock;

namespace detail {

namespace {

using Json = nlohmann::ordered_json;  // keeps fields in the documented order

std::int64_t whole_ms(std::chrono::microseconds duration) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(duration).count();
}

// How much of a request and its outcome a record keeps: each request string, the decision's
// texts and the message to max_arg_bytes (a message may quote the request), the args together to
// max_args_total_bytes.
RecordBounds bounds_of(const AuditOptions& options) {
  return {.field_bytes = options.max_arg_bytes,
          .args_bytes = options.max_args_total_bytes,
          .text_bytes = options.max_arg_bytes,
          .message_bytes = options.max_arg_bytes};
}

// The fields every record type shares: who asked what, and the decision.
// The digest of the argv as the request carried it, before any cap: tool, then each arg.
std::string argv_digest(const Request& request) {
  std::vector<std::string_view> parts;
  parts.reserve(request.args.size() + 1);
  parts.emplace_back(request.tool);
  for (const auto& arg : request.args) parts.emplace_back(arg);
  return sha256_hex_of_parts(parts);
}

Json common_fields(AuditRecordType type, const ExecutionRecord& record, const Request& request,
                   std::string_view policy_revision, const AuditOptions& options) {
  Json j;
  j["type"] = std::string(to_string(type));
  j["time"] = to_rfc3339(record.finished);
  j["execution_id"] = record.execution_id;
  j["node"] = options.node;
  j["twin_id"] = record.twin_id;
  // Request::authenticated_twin, null when the host proved none. No metadata is recorded.
  bool ignored = false;  // single strings are cut silently; only args report it
  j["authenticated_twin"] = request.authenticated_twin
                                ? Json(bounded_text(*request.authenticated_twin, options.max_arg_bytes, ignored))
                                : Json(nullptr);
  j["job_id"] = record.job_id;
  j["namespace"] = record.ns;
  j["tool"] = record.tool;
  j["args"] = record.args;
  j["arg_count"] = record.arg_count;
  j["args_truncated"] = record.args_truncated;
  j["argv_sha256"] = argv_digest(request);
  j["allowed"] = record.allowed;
  j["reason"] = record.reason;
  j["rule"] = record.rule;
  j["policy_revision"] = policy_revision;
  j["notes"] = record.notes;
  j["isolation"] = to_string(record.isolation);
  return j;
}

void add_execution_fields(Json& j, const ExecutionRecord& record) {
  j["started"] = to_rfc3339(record.started);
  j["ran"] = record.ran;
  j["exit_code"] = record.exit_code;
  j["signal"] = record.signal;
  j["timed_out"] = record.timed_out;
  j["cancelled"] = record.cancelled;
  j["limit_hit"] = to_string(record.limit_hit);
  j["duration_ms"] = whole_ms(record.elapsed);
  j["cpu_user_ms"] = whole_ms(record.usage.cpu_user);
  j["cpu_system_ms"] = whole_ms(record.usage.cpu_system);
  j["max_rss_bytes"] = record.usage.max_rss_bytes;
  j["peak_memory_bytes"] = record.usage.peak_memory_bytes;
  j["message"] = record.message;
  j["stdout_bytes"] = record.out.total_bytes;
  j["stderr_bytes"] = record.err.total_bytes;
  j["stdout_truncated"] = record.out.truncated;
  j["stderr_truncated"] = record.err.truncated;
  if (record.workspace) {
    j["workspace_bytes"] = record.workspace->bytes;
    j["workspace_quota_bytes"] = record.workspace->quota_bytes;
  }
  if (record.egress) {
    j["egress_allowed"] = record.egress->allowed;
    j["egress_refused"] = record.egress->refused;
    j["egress_bytes_up"] = record.egress->bytes_up;
    j["egress_bytes_down"] = record.egress->bytes_down;
  }
}

// One JSON line. dump() throws on invalid UTF-8 unless told to replace it: arguments and messages
// come from twins and commands, so anything may be in them.
std::string to_line(const Json& j) {
  auto line = j.dump(-1, ' ', false, Json::error_handler_t::replace);
  line += '\n';
  return line;
}

std::string text_field(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool bool_field(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

template <class T>
std::optional<T> number_field(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<T>();
}

}  // namespace

Result<std::string> audit_line(AuditRecordType type, const Request& request, const Outcome& outcome,
                               Clock::time_point now, const AuditOptions& options) {
  try {
    const auto record = make_record(request, outcome, now - outcome.elapsed, now, bounds_of(options));
    Json j = common_fields(type, record, request, outcome.policy_revision, options);
    if (type == AuditRecordType::execution) add_execution_fields(j, record);
    return to_line(j);
  } catch (const nlohmann::json::exception& e) {
    return fail(Errc::internal, std::string("encode audit record: ") + e.what());
  }
}

Result<std::string> auth_rejected_line(const Request& request, const AuthRejection& rejection, const std::string& id,
                                       Clock::time_point now, const AuditOptions& options) {
  try {
    Outcome outcome;
    outcome.execution_id = id;
    outcome.decision.reason = rejection.status + ": " + rejection.reason;
    outcome.decision.rule = "authentication";
    Json j = common_fields(AuditRecordType::auth_rejected, make_record(request, outcome, now, now, bounds_of(options)),
                           request, {}, options);
    j.erase("isolation");        // nothing was placed anywhere
    j.erase("policy_revision");  // and no policy decided
    bool ignored = false;
    j["peer"] = bounded_text(rejection.peer, options.max_arg_bytes, ignored);
    j["rpc"] = rejection.rpc;
    return to_line(j);
  } catch (const nlohmann::json::exception& e) {
    return fail(Errc::internal, std::string("encode audit record: ") + e.what());
  }
}

Result<std::string> egress_line(const EgressConnection& connection, Clock::time_point now, const AuditOptions& options) {
  try {
    bool ignored = false;
    const auto text = [&](const std::string& s) { return bounded_text(s, options.max_arg_bytes, ignored); };
    Json j;
    j["type"] = std::string(to_string(AuditRecordType::egress));
    j["time"] = to_rfc3339(now);
    j["execution_id"] = connection.execution_id;
    j["node"] = options.node;
    j["twin_id"] = connection.twin;
    j["method"] = text(connection.method);
    j["host"] = text(connection.host);
    j["port"] = connection.port;
    j["address"] = connection.address;
    j["allowed"] = connection.allowed;
    j["rule"] = text(connection.rule);
    j["reason"] = text(connection.reason);
    j["started"] = to_rfc3339(connection.started);
    j["duration_ms"] = connection.duration.count();
    j["bytes_up"] = connection.bytes_up;
    j["bytes_down"] = connection.bytes_down;
    return to_line(j);
  } catch (const nlohmann::json::exception& e) {
    return fail(Errc::internal, std::string("encode audit record: ") + e.what());
  }
}

std::optional<AuditEntry> audit_entry_from_line(std::string line) {
  try {
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) return std::nullopt;
    AuditEntry e;
    e.type = text_field(j, "type");
    e.execution_id = text_field(j, "execution_id");
    e.time = text_field(j, "time");
    if (!audit_record_type_from_string(e.type) || e.execution_id.empty() || e.time.empty()) {
      return std::nullopt;
    }
    e.twin_id = text_field(j, "twin_id");
    if (const auto it = j.find("authenticated_twin"); it != j.end() && it->is_string()) {
      e.authenticated_twin = it->get<std::string>();
    }
    e.job_id = text_field(j, "job_id");
    e.ns = text_field(j, "namespace");
    e.tool = text_field(j, "tool");
    if (const auto it = j.find("args"); it != j.end() && it->is_array()) {
      for (const auto& arg : *it) e.args.push_back(arg.is_string() ? arg.get<std::string>() : arg.dump());
    }
    e.args_truncated = bool_field(j, "args_truncated");
    if (const auto it = j.find("notes"); it != j.end() && it->is_array()) {
      for (const auto& note : *it) e.notes.push_back(note.is_string() ? note.get<std::string>() : note.dump());
    }
    e.allowed = bool_field(j, "allowed");
    e.reason = text_field(j, "reason");
    e.rule = text_field(j, "rule");
    e.policy_revision = text_field(j, "policy_revision");
    e.node = text_field(j, "node");
    e.argv_sha256 = text_field(j, "argv_sha256");
    e.prev = text_field(j, "prev");
    e.isolation = text_field(j, "isolation");
    e.ran = bool_field(j, "ran");
    e.exit_code = number_field<int>(j, "exit_code");
    e.signal = number_field<int>(j, "signal").value_or(0);
    e.timed_out = bool_field(j, "timed_out");
    e.cancelled = bool_field(j, "cancelled");
    e.limit_hit = text_field(j, "limit_hit");
    e.duration_ms = number_field<std::int64_t>(j, "duration_ms");
    e.message = text_field(j, "message");
    e.peer = text_field(j, "peer");
    e.rpc = text_field(j, "rpc");
    e.method = text_field(j, "method");
    e.host = text_field(j, "host");
    e.port = number_field<std::uint16_t>(j, "port").value_or(0);
    e.address = text_field(j, "address");
    e.bytes_up = number_field<std::uint64_t>(j, "bytes_up").value_or(0);
    e.bytes_down = number_field<std::uint64_t>(j, "bytes_down").value_or(0);
    e.raw_json = std::move(line);
    return e;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

}  // namespace detail
}  // namespace pagi_exec
