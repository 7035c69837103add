// SPDX-License-Identifier: Apache-2.0
// Server logging: one line per event on stderr, as text or JSON, RFC 3339 UTC timestamps,
// thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <pagi_exec/pagi_exec.hpp>

namespace tools_server {

/// Severity of a log line; a logger at level L writes lines of level L and more severe.
enum class LogLevel : std::uint8_t { error, warn, info, debug };

/// "error", "warn", "info" or "debug".
[[nodiscard]] const char* to_string(LogLevel level) noexcept;

/// The level spelled `name` (exactly as to_string spells it), or nullopt.
[[nodiscard]] std::optional<LogLevel> log_level_from_string(std::string_view name) noexcept;

/// text: "<time> <LEVEL> <message> name=value ..."; json: one object per line,
/// {"time":..,"level":..,"message":..,<fields>}.
enum class LogFormat : std::uint8_t { text, json };

/// The format spelled `name` ("text" or "json"), or nullopt.
[[nodiscard]] std::optional<LogFormat> log_format_from_string(std::string_view name) noexcept;

/// Sets the process-wide level (default info). Thread-safe.
void set_log_level(LogLevel level) noexcept;

/// Sets the process-wide format (default text). Thread-safe.
void set_log_format(LogFormat format) noexcept;

/// True when a line of `level` would be written. Thread-safe.
[[nodiscard]] bool log_enabled(LogLevel level) noexcept;

/// One field of an event. Made by its kind, which says how a text line shows it.
class LogField {
 public:
  /// A value that came from outside (a twin id, a peer, a reason): quoted and escaped in text,
  /// cut to `max_bytes` with a trailing "..." in both formats so that hostile input cannot flood
  /// the log; invalid UTF-8 is replaced in JSON.
  [[nodiscard]] static LogField text(std::string name, std::string_view value, std::size_t max_bytes = 128);
  /// One of our own words (an RPC name, an outcome, an execution id): shown as is in text.
  [[nodiscard]] static LogField word(std::string name, std::string_view value);
  [[nodiscard]] static LogField number(std::string name, std::int64_t value);
  [[nodiscard]] static LogField flag(std::string name, bool value);

  enum class Kind : std::uint8_t { text, word, number, flag };
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] Kind kind() const noexcept { return kind_; }
  /// The value, unquoted (a cut text ends in "..."; a flag is "true" or "false").
  [[nodiscard]] const std::string& value() const noexcept { return value_; }
  /// A number field's value (0 for the other kinds).
  [[nodiscard]] std::int64_t number() const noexcept { return number_; }

 private:
  LogField(std::string name, Kind kind, std::string value)
      : name_(std::move(name)), kind_(kind), value_(std::move(value)) {}
  std::string name_;
  Kind kind_;
  std::string value_;
  std::int64_t number_ = 0;
};

using LogFields = std::vector<LogField>;

/// The line (with its '\n') `log` writes for this event in `format`; exposed for tests.
[[nodiscard]] std::string render_line(LogLevel level, std::string_view message, const LogFields& fields,
                                      LogFormat format);

/// Writes one line for the event to stderr as one write, if `level` is enabled. The message's
/// control characters are escaped so that one call is always one line. Thread-safe.
void log(LogLevel level, std::string_view message, const LogFields& fields = {});

/// Logs each of the library's notices at the matching level, in order, each with `fields`.
/// Thread-safe.
void log(const pagi_exec::Notices& notices, const LogFields& fields = {});

/// The notices of a policy reload, each with event=policy_reload, result (ok or failed), the
/// revision in effect afterwards (the old one when the reload failed) and, when given, `reason`
/// (SIGHUP gives none; the file watch says "file changed").
void log_policy_reload(const pagi_exec::Notices& notices, std::string_view revision_in_effect,
                       std::string_view reason = {});

/// Why the server cannot start: "tools-server: <message>" on stderr as it always was in text
/// (also before the format is known), an error event (event=startup_failed) in JSON.
void log_startup_failure(const pagi_exec::Error& error);

/// `value` as a double-quoted logfmt value: control characters and quotes escaped, cut to
/// `max_bytes` with a trailing "..." so that hostile input cannot flood the log.
[[nodiscard]] std::string log_quote(std::string_view value, std::size_t max_bytes = 128);

/// The line of one finished request: execution id, twin, tool, decision, rule, outcome, exit
/// code (or error), duration. Info, except a request admission turned away (warn) and one the
/// server failed to run (error: sandbox set-up, spawn, audit, internal).
void log_request(const pagi_exec::Request& request, const pagi_exec::Result<pagi_exec::Outcome>& result);

}  // namespace tools_server
