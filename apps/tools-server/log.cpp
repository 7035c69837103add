// SPDX-License-Identifier: Apache-2.0
// Server logging: formats lines with the library's RFC 3339 UTC timestamp, writes each with one fwrite.
#include "log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>

namespace tools_server {
namespace {

std::atomic<LogLevel> current_level{LogLevel::info};
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

// At debug level the request line also carries what the caller sent beyond twin and tool.
std::string debug_details(const pagi_exec::Request& request) {
  if (!log_enabled(LogLevel::debug)) return {};
  std::string out = " job=" + log_quote(request.job_id) + " ns=" + log_quote(request.ns) + " args=[";
  constexpr std::size_t shown_args = 8;
  for (std::size_t i = 0; i < request.args.size() && i < shown_args; ++i) {
    out += (i == 0 ? "" : " ") + log_quote(request.args[i]);
  }
  if (request.args.size() > shown_args) out += " ...";
  return out + "] metadata_keys=" + std::to_string(request.metadata.size());
}

}  // namespace

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

void set_log_level(LogLevel level) noexcept { current_level.store(level, std::memory_order_relaxed); }

bool log_enabled(LogLevel level) noexcept {
  return static_cast<int>(level) <= static_cast<int>(current_level.load(std::memory_order_relaxed));
}

void log(LogLevel level, std::string_view message) {
  if (!log_enabled(level)) return;
  std::string line = pagi_exec::to_rfc3339(std::chrono::system_clock::now());  // milliseconds, UTC
  line += ' ';
  line += upper_name(level);
  line += ' ';
  for (const char c : message) append_escaped(line, c);
  line += '\n';
  // One fwrite under a lock: lines from concurrent RPC threads never interleave.
  const std::lock_guard lock(write_mutex);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

void log(const pagi_exec::Notices& notices) {
  for (const auto& notice : notices) {
    switch (notice.level) {
      case pagi_exec::NoticeLevel::error: log(LogLevel::error, notice.text); break;
      case pagi_exec::NoticeLevel::warn: log(LogLevel::warn, notice.text); break;
      case pagi_exec::NoticeLevel::info: log(LogLevel::info, notice.text); break;
    }
  }
}

std::string log_quote(std::string_view value, std::size_t max_bytes) {
  std::string out = "\"";
  const bool cut = value.size() > max_bytes;
  for (const char c : value.substr(0, max_bytes)) {
    if (c == '"' || c == '\\') out += '\\';
    append_escaped(out, c);
  }
  if (cut) out += "...";
  out += '"';
  return out;
}

void log_request(const pagi_exec::Request& request, const pagi_exec::Result<pagi_exec::Outcome>& result) {
  if (!log_enabled(LogLevel::info)) return;
  std::string line = "request";
  if (!result) {
    line += " id=- twin=" + log_quote(request.twin_id) + " tool=" + log_quote(request.tool) +
            " decision=error error=" + pagi_exec::to_string(result.error().code) +
            " message=" + log_quote(result.error().message(), 512);
    log(LogLevel::info, line + debug_details(request));
    return;
  }
  const auto& outcome = *result;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(outcome.elapsed).count();
  line += " id=" + outcome.execution_id + " twin=" + log_quote(request.twin_id) + " tool=" + log_quote(request.tool) +
          " decision=" + (outcome.decision.allowed ? "allowed" : "refused") +
          " rule=" + log_quote(outcome.decision.rule) + " exit=" + std::to_string(outcome.exit_code);
  if (outcome.signal != 0) line += " signal=" + std::to_string(outcome.signal);
  if (outcome.timed_out) line += " timed_out=true";
  if (outcome.cancelled) line += " cancelled=true";
  if (outcome.limit_hit != pagi_exec::LimitHit::none) line += std::string(" limit=") + pagi_exec::to_string(outcome.limit_hit);
  for (const auto& note : outcome.decision.notes) line += " note=" + log_quote(note, 256);  // e.g. unjudgeable shell
  line += " duration_ms=" + std::to_string(ms);
  log(LogLevel::info, line + debug_details(request));
}

}  // namespace tools_server
