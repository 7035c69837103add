// SPDX-License-Identifier: Apache-2.0
// Audit records <-> JSON with nlohmann/json, and RFC 3339 times; no escaping by hand.
#include "audit_json.hpp"

#include <algorithm>
#include <cstdio>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

namespace pagi_exec {

namespace {

using Clock = std::chrono::system_clock;

// Reads exactly `n` decimal digits from the front of `text`.
std::optional<int> take_digits(std::string_view& text, std::size_t n) {
  if (text.size() < n) return std::nullopt;
  int value = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = text[i];
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  text.remove_prefix(n);
  return value;
}

bool take(std::string_view& text, std::string_view one_of) {
  if (text.empty() || one_of.find(text.front()) == std::string_view::npos) return false;
  text.remove_prefix(1);
  return true;
}

// ".685" -> 685 ms as nanoseconds; at least one digit, digits past nanoseconds are ignored.
std::optional<std::chrono::nanoseconds> take_fraction(std::string_view& text) {
  std::int64_t nanos = 0;
  std::size_t digits = 0;
  while (!text.empty() && text.front() >= '0' && text.front() <= '9') {
    if (digits < 9) nanos = nanos * 10 + (text.front() - '0');
    ++digits;
    text.remove_prefix(1);
  }
  if (digits == 0) return std::nullopt;
  for (std::size_t i = digits; i < 9; ++i) nanos *= 10;
  return std::chrono::nanoseconds(nanos);
}

// "Z" or "+hh:mm" / "-hh:mm": the zone's offset from UTC.
std::optional<std::chrono::minutes> take_offset(std::string_view& text) {
  if (take(text, "Zz")) return std::chrono::minutes(0);
  const bool negative = !text.empty() && text.front() == '-';
  if (!take(text, "+-")) return std::nullopt;
  const auto hours = take_digits(text, 2);
  if (!hours || !take(text, ":")) return std::nullopt;
  const auto minutes = take_digits(text, 2);
  if (!minutes || *hours > 23 || *minutes > 59) return std::nullopt;
  const std::chrono::minutes offset(*hours * 60 + *minutes);
  return negative ? -offset : offset;
}

}  // namespace

std::string to_rfc3339(Clock::time_point time) {
  using namespace std::chrono;
  const auto ms = floor<milliseconds>(time);
  const auto day = floor<days>(ms);
  const year_month_day date{day};
  const hh_mm_ss clock{ms - day};
  char text[40];
  std::snprintf(text, sizeof text, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                static_cast<int>(clock.hours().count()), static_cast<int>(clock.minutes().count()),
                static_cast<int>(clock.seconds().count()), static_cast<int>(clock.subseconds().count()));
  return text;
}

std::optional<Clock::time_point> parse_rfc3339(std::string_view text) {
  using namespace std::chrono;
  const auto y = take_digits(text, 4);
  if (!y || !take(text, "-")) return std::nullopt;
  const auto m = take_digits(text, 2);
  if (!m || !take(text, "-")) return std::nullopt;
  const auto d = take_digits(text, 2);
  if (!d) return std::nullopt;
  const year_month_day date{year{*y}, month{static_cast<unsigned>(*m)}, day{static_cast<unsigned>(*d)}};
  if (!date.ok()) return std::nullopt;
  Clock::time_point result{sys_days{date}};
  if (text.empty()) return result;  // a date alone: midnight UTC
  if (!take(text, "Tt ")) return std::nullopt;
  const auto hh = take_digits(text, 2);
  if (!hh || !take(text, ":")) return std::nullopt;
  const auto mm = take_digits(text, 2);
  if (!mm || !take(text, ":")) return std::nullopt;
  const auto ss = take_digits(text, 2);
  if (!ss || *hh > 23 || *mm > 59 || *ss > 60) return std::nullopt;  // 60: a leap second
  nanoseconds fraction{0};
  if (take(text, ".")) {
    const auto parsed = take_fraction(text);
    if (!parsed) return std::nullopt;
    fraction = *parsed;
  }
  const auto offset = take_offset(text);
  if (!offset || !text.empty()) return std::nullopt;
  result += duration_cast<Clock::duration>(hours(*hh) + minutes(*mm) + seconds(*ss) + fraction);
  return result - *offset;
}

namespace detail {

namespace {

using Json = nlohmann::ordered_json;  // keeps fields in the documented order

std::int64_t whole_ms(std::chrono::microseconds duration) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(duration).count();
}

// The fields both record types share: who asked what, and the decision.
Json common_fields(AuditRecordType type, const Request& request, const Outcome& outcome, Clock::time_point now,
                   const AuditOptions& options) {
  bool ignored = false;  // single strings are cut silently; only args report it
  const auto cap = [&](const std::string& text) { return bounded_text(text, options.max_arg_bytes, ignored); };
  Json j;
  switch (type) {
    case AuditRecordType::decision: j["type"] = "decision"; break;
    case AuditRecordType::execution: j["type"] = "execution"; break;
    case AuditRecordType::auth_rejected: j["type"] = "auth_rejected"; break;
  }
  j["time"] = to_rfc3339(now);
  j["execution_id"] = outcome.execution_id;
  j["twin_id"] = cap(request.twin_id);
  // Request::authenticated_twin, null when the host proved none. No metadata is recorded.
  j["authenticated_twin"] = request.authenticated_twin ? Json(cap(*request.authenticated_twin)) : Json(nullptr);
  j["job_id"] = cap(request.job_id);
  j["namespace"] = cap(request.ns);
  j["tool"] = cap(request.tool);
  auto args = bounded_args(request.args, options.max_args_total_bytes, options.max_arg_bytes);
  j["args"] = std::move(args.kept);
  j["arg_count"] = request.args.size();
  j["args_truncated"] = args.truncated;
  j["allowed"] = outcome.decision.allowed;
  j["reason"] = cap(outcome.decision.reason);
  j["rule"] = cap(outcome.decision.rule);
  j["notes"] = outcome.decision.notes;
  j["isolation"] = to_string(outcome.isolation);
  return j;
}

void add_execution_fields(Json& j, const Outcome& outcome, Clock::time_point now) {
  j["started"] = to_rfc3339(now - outcome.elapsed);
  j["ran"] = outcome.ran;
  j["exit_code"] = outcome.exit_code;
  j["signal"] = outcome.signal;
  j["timed_out"] = outcome.timed_out;
  j["cancelled"] = outcome.cancelled;
  j["limit_hit"] = to_string(outcome.limit_hit);
  j["duration_ms"] = whole_ms(outcome.elapsed);
  j["cpu_user_ms"] = whole_ms(outcome.usage.cpu_user);
  j["cpu_system_ms"] = whole_ms(outcome.usage.cpu_system);
  j["max_rss_bytes"] = outcome.usage.max_rss_bytes;
  j["peak_memory_bytes"] = outcome.usage.peak_memory_bytes;
  j["message"] = outcome.message;
  j["stdout_bytes"] = outcome.out.total_bytes;
  j["stderr_bytes"] = outcome.err.total_bytes;
  j["stdout_truncated"] = outcome.out.truncated;
  j["stderr_truncated"] = outcome.err.truncated;
  if (outcome.workspace) {
    j["workspace_bytes"] = outcome.workspace->bytes;
    j["workspace_quota_bytes"] = outcome.workspace->quota_bytes;
  }
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
    Json j = common_fields(type, request, outcome, now, options);
    if (type == AuditRecordType::execution) add_execution_fields(j, outcome, now);
    // dump() throws on invalid UTF-8 unless told to replace it: arguments and messages come from
    // twins and commands, so anything may be in them.
    auto line = j.dump(-1, ' ', false, Json::error_handler_t::replace);
    line += '\n';
    return line;
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
    Json j = common_fields(AuditRecordType::auth_rejected, request, outcome, now, options);
    j.erase("isolation");  // nothing was placed anywhere
    bool ignored = false;
    j["peer"] = bounded_text(rejection.peer, options.max_arg_bytes, ignored);
    j["rpc"] = rejection.rpc;
    auto line = j.dump(-1, ' ', false, Json::error_handler_t::replace);
    line += '\n';
    return line;
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
    if ((e.type != "decision" && e.type != "execution" && e.type != "auth_rejected") || e.execution_id.empty() ||
        e.time.empty()) {
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
    e.raw_json = std::move(line);
    return e;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

}  // namespace detail
}  // namespace pagi_exec
