// SPDX-License-Identifier: Apache-2.0
// Server logging: formats lines with the library's RFC 3339 UTC timestamp (text, or JSON through
// nlohmann-json), writes each with one fwrite.
#include "log.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>

#include <nlohmann/json.hpp>

namespace tools_server {
namespace {

std::atomic<LogLevel> current_level{LogLevel::info};
std::atomic<LogFormat> current_format{LogFormat::text};
std::mutex write_mutex;

const char* upper_name(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::error: return "ERROR";
    case LogLevel::warn: return "WARN";
    case LogLevel::info: return "INFO";
    case LogLevel::debug: return "DEBUG";
  }
  return "?";
}

// Appends `c`, escaping what would break a one-line, quoted log value.
void append_escaped(std::string& out, char c) {
  const auto u = static_cast<unsigned char>(c);
  if (c == '\n') {
    out += "\\n";
  } else if (c == '\r') {
    out += "\\r";
  } else if (c == '\t') {
    out += "\\t";
  } else if (u < 0x20 || u == 0x7f) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "\\x%02x", static_cast<unsigned>(u));
    out += hex;
  } else {
    out += c;
  }
}

std::string quote_value(std::string_view value) {
  std::string out = "\"";
  for (const char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    append_escaped(out, c);
  }
  out += '"';
  return out;
}

// `value` cut to `max_bytes`, with "..." when something was cut.
std::string cut(std::string_view value, std::size_t max_bytes) {
  if (value.size() <= max_bytes) return std::string(value);
  return std::string(value.substr(0, max_bytes)) + "...";
}

std::string render_text(LogLevel level, std::string_view message, const LogFields& fields) {
  std::string line = pagi_exec::to_rfc3339(std::chrono::system_clock::now());  // milliseconds, UTC
  line += ' ';
  line += upper_name(level);
  line += ' ';
  for (const char c : message) append_escaped(line, c);
  for (const auto& field : fields) {
    line += ' ';
    line += field.name();
    line += '=';
    if (field.kind() == LogField::Kind::text) {
      line += quote_value(field.value());
    } else {
      for (const char c : field.value()) append_escaped(line, c);  // our own words; escaped all the same
    }
  }
  line += '\n';
  return line;
}

std::string render_json(LogLevel level, std::string_view message, const LogFields& fields) {
  auto object = nlohmann::ordered_json::object();
  object["time"] = pagi_exec::to_rfc3339(std::chrono::system_clock::now());
  object["level"] = to_string(level);
  object["message"] = message;
  for (const auto& field : fields) {
    switch (field.kind()) {
      case LogField::Kind::text:
      case LogField::Kind::word: object[field.name()] = field.value(); break;
      case LogField::Kind::number: object[field.name()] = field.number(); break;
      case LogField::Kind::flag: object[field.name()] = field.value() == "true"; break;
    }
  }
  // Hostile bytes (invalid UTF-8 in a twin id) are replaced, never a reason to lose the line.
  return object.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

// At debug level the request line also carries what the caller sent beyond twin and tool.
void add_debug_details(const pagi_exec::Request& request, LogFields& fields) {
  if (!log_enabled(LogLevel::debug)) return;
  fields.push_back(LogField::text("job", request.job_id));
  fields.push_back(LogField::text("ns", request.ns));
  constexpr std::size_t shown_args = 8;
  std::string args;
  for (std::size_t i = 0; i < request.args.size() && i < shown_args; ++i) {
    args += (i == 0 ? "" : " ") + log_quote(request.args[i]);
  }
  if (request.args.size() > shown_args) args += " ...";
  fields.push_back(LogField::text("args", args, 2048));
  fields.push_back(LogField::number("metadata_keys", static_cast<std::int64_t>(request.metadata.size())));
}

// How loud a request the server could not serve is: admission turning it away is the load the
// operator sized for (warn); a request that was wrong is the caller's business (info); anything
// else is the server failing (error).
LogLevel level_of(pagi_exec::Errc code) {
  switch (code) {
    case pagi_exec::Errc::resource_exhausted: return LogLevel::warn;
    case pagi_exec::Errc::invalid_request: return LogLevel::info;
    case pagi_exec::Errc::invalid_config:
    case pagi_exec::Errc::sandbox_setup:
    case pagi_exec::Errc::spawn_failed:
    case pagi_exec::Errc::io:
    case pagi_exec::Errc::audit_unavailable:
    case pagi_exec::Errc::internal: return LogLevel::error;
  }
  return LogLevel::error;
}

}  // namespace

LogField LogField::text(std::string name, std::string_view value, std::size_t max_bytes) {
  return {std::move(name), Kind::text, cut(value, max_bytes)};
}
LogField LogField::word(std::string name, std::string_view value) {
  return {std::move(name), Kind::word, std::string(value)};
}
LogField LogField::number(std::string name, std::int64_t value) {
  LogField field{std::move(name), Kind::number, std::to_string(value)};
  field.number_ = value;
  return field;
}
LogField LogField::flag(std::string name, bool value) {
  return {std::move(name), Kind::flag, value ? "true" : "false"};
}

const char* to_string(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::error: return "error";
    case LogLevel::warn: return "warn";
    case LogLevel::info: return "info";
    case LogLevel::debug: return "debug";
  }
  return "unknown";
}

std::optional<LogLevel> log_level_from_string(std::string_view name) noexcept {
  for (const auto level : {LogLevel::error, LogLevel::warn, LogLevel::info, LogLevel::debug}) {
    if (name == to_string(level)) return level;
  }
  return std::nullopt;
}

std::optional<LogFormat> log_format_from_string(std::string_view name) noexcept {
  if (name == "text") return LogFormat::text;
  if (name == "json") return LogFormat::json;
  return std::nullopt;
}

void set_log_level(LogLevel level) noexcept { current_level.store(level, std::memory_order_relaxed); }

void set_log_format(LogFormat format) noexcept { current_format.store(format, std::memory_order_relaxed); }

bool log_enabled(LogLevel level) noexcept {
  return static_cast<int>(level) <= static_cast<int>(current_level.load(std::memory_order_relaxed));
}

std::string render_line(LogLevel level, std::string_view message, const LogFields& fields, LogFormat format) {
  return format == LogFormat::json ? render_json(level, message, fields) : render_text(level, message, fields);
}

void log(LogLevel level, std::string_view message, const LogFields& fields) {
  if (!log_enabled(level)) return;
  const auto line = render_line(level, message, fields, current_format.load(std::memory_order_relaxed));
  // One fwrite under a lock: lines from concurrent RPC threads never interleave.
  const std::lock_guard lock(write_mutex);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

void log(const pagi_exec::Notices& notices, const LogFields& fields) {
  for (const auto& notice : notices) {
    switch (notice.level) {
      case pagi_exec::NoticeLevel::error: log(LogLevel::error, notice.text, fields); break;
      case pagi_exec::NoticeLevel::warn: log(LogLevel::warn, notice.text, fields); break;
      case pagi_exec::NoticeLevel::info: log(LogLevel::info, notice.text, fields); break;
    }
  }
}

void log_policy_reload(const pagi_exec::Notices& notices, std::string_view revision_in_effect,
                       std::string_view reason) {
  const bool failed = std::any_of(notices.begin(), notices.end(),
                                  [](const auto& notice) { return notice.level == pagi_exec::NoticeLevel::error; });
  LogFields fields{LogField::word("event", "policy_reload"), LogField::word("result", failed ? "failed" : "ok"),
                   LogField::text("policy_revision", revision_in_effect)};
  if (!reason.empty()) fields.push_back(LogField::text("reason", reason));
  log(notices, fields);
}

void log_startup_failure(const pagi_exec::Error& error) {
  if (current_format.load(std::memory_order_relaxed) == LogFormat::json) {
    log(LogLevel::error, error.message(),
        {LogField::word("event", "startup_failed"), LogField::word("error", pagi_exec::to_string(error.code))});
    return;
  }
  const auto line = "tools-server: " + error.message() + "\n";
  const std::lock_guard lock(write_mutex);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

std::string log_quote(std::string_view value, std::size_t max_bytes) { return quote_value(cut(value, max_bytes)); }

void log_request(const pagi_exec::Request& request, const pagi_exec::Result<pagi_exec::Outcome>& result) {
  const auto level = result ? LogLevel::info : level_of(result.error().code);
  if (!log_enabled(level)) return;
  LogFields fields;
  if (!result) {
    const bool admission = result.error().code == pagi_exec::Errc::resource_exhausted;
    fields = {LogField::text("twin", request.twin_id), LogField::text("tool", request.tool),
              LogField::word("decision", "error"), LogField::word("error", pagi_exec::to_string(result.error().code)),
              LogField::text("reason", result.error().message(), 512)};
    add_debug_details(request, fields);
    log(level, admission ? "admission_rejected" : "request_failed", fields);
    return;
  }
  const auto& outcome = *result;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(outcome.elapsed).count();
  const auto ended = outcome.decision.allowed
                         ? pagi_exec::how_it_ended(outcome.ran, outcome.exit_code, outcome.timed_out)
                         : pagi_exec::RecordOutcome::refused;
  fields = {LogField::word("execution_id", outcome.execution_id), LogField::text("twin", request.twin_id),
            LogField::text("tool", request.tool),
            LogField::word("decision", outcome.decision.allowed ? "allowed" : "refused"),
            LogField::text("rule", outcome.decision.rule), LogField::word("outcome", pagi_exec::to_string(ended)),
            LogField::number("exit", outcome.exit_code)};
  if (outcome.signal != 0) fields.push_back(LogField::number("signal", outcome.signal));
  if (outcome.timed_out) fields.push_back(LogField::flag("timed_out", true));
  if (outcome.cancelled) fields.push_back(LogField::flag("cancelled", true));
  if (outcome.limit_hit != pagi_exec::LimitHit::none) {
    fields.push_back(LogField::word("limit", pagi_exec::to_string(outcome.limit_hit)));
  }
  if (!outcome.decision.notes.empty()) {  // what the decision could not see, e.g. unjudgeable shell
    std::string notes;
    for (const auto& note : outcome.decision.notes) notes += (notes.empty() ? "" : "; ") + note;
    fields.push_back(LogField::text("notes", notes, 512));
  }
  fields.push_back(LogField::number("duration_ms", ms));
  add_debug_details(request, fields);
  log(level, "request", fields);
}

}  // namespace tools_server
