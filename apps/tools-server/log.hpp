// SPDX-License-Identifier: Apache-2.0
// Server logging: one line per event on stderr, RFC 3339 UTC timestamps, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <pagi_exec/pagi_exec.hpp>

namespace tools_server {

/// Severity of a log line; a logger at level L writes lines of level L and more severe.
enum class LogLevel : std::uint8_t { error, warn, info, debug };

/// "error", "warn", "info" or "debug".
[[nodiscard]] const char* to_string(LogLevel level) noexcept;

/// The level spelled `name` (exactly as to_string spells it), or nullopt.
[[nodiscard]] std::optional<LogLevel> log_level_from_string(std::string_view name) noexcept;

/// Sets the process-wide level (default info). Thread-safe.
void set_log_level(LogLevel level) noexcept;

/// True when a line of `level` would be written. Thread-safe.
[[nodiscard]] bool log_enabled(LogLevel level) noexcept;

/// Writes "<RFC 3339 UTC time> <LEVEL> <message>\n" to stderr as one write, if enabled.
/// Control characters in `message` are escaped so that one call is always one line. Thread-safe.
void log(LogLevel level, std::string_view message);

/// Logs each of the library's notices at the matching level, in order. Thread-safe.
void log(const pagi_exec::Notices& notices);

/// `value` as a double-quoted logfmt value: control characters and quotes escaped, cut to
/// `max_bytes` with a trailing "..." so that hostile input cannot flood the log.
[[nodiscard]] std::string log_quote(std::string_view value, std::size_t max_bytes = 128);

/// The info line of one finished request: execution id, twin, tool, decision and rule,
/// exit code (or error), duration.
void log_request(const pagi_exec::Request& request, const pagi_exec::Result<pagi_exec::Outcome>& result);

}  // namespace tools_server
