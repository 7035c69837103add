// SPDX-License-Identifier: Apache-2.0
// Server configuration: every setting is a CLI11 flag bound to an environment variable.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include <pagi_exec/pagi_exec.hpp>

#include "log.hpp"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace tools_server {

/// Exit code of a start-up refused because of the configuration (bad flag or variable value,
/// isolation required but unavailable).
inline constexpr int exit_bad_config = 2;

/// The validated settings of one server process.
struct ServerConfig {
  std::string listen = "0.0.0.0:50054";  ///< "host:port" (port may be 0) or "unix:/abs/path"
  std::filesystem::path sandbox_dir = "/tmp/pagi-sandbox";
  bool safe_mode = false;
  std::chrono::milliseconds timeout{10'000};
  pagi_exec::Isolation isolation = pagi_exec::Isolation::cwd;
  /// Refuse to start when the isolation does not work. Unset: required for native (asking for
  /// the sandbox and silently not getting it is never right), not for bwrap (the seed's fallback).
  std::optional<bool> require_isolation;

  [[nodiscard]] bool isolation_required() const noexcept {
    return require_isolation.value_or(isolation == pagi_exec::Isolation::native);
  }
  std::filesystem::path bwrap_path = "/usr/bin/bwrap";
  std::uint64_t max_output_bytes = 32 * 1024;
  std::uint64_t max_output_lines = 200;
  int max_concurrency = 64;
  std::size_t history_size = 1000;
  pagi_exec::RequestLimits request_limits;  ///< most args and bytes one request may carry
  pagi_exec::Limits limits;  ///< the resource limits; timeout and output caps are the fields above
  std::string auth = "none";             ///< none, token or mtls
  std::filesystem::path auth_tokens_file;  ///< token: "<sha256 hex> <twin>" per line
  std::filesystem::path tls_cert, tls_key; ///< TLS server certificate chain and key (PEM)
  std::filesystem::path tls_client_ca;   ///< mtls: the CA client certificates must chain to
  std::filesystem::path policy_file;     ///< TOML policy; empty: the embedded seed matrix
  std::filesystem::path audit_log;       ///< JSON Lines audit log; empty: none
  bool audit_sync_every = true;          ///< fdatasync after every record (else at most every second)
  bool audit_required = false;           ///< refuse executions the audit log cannot record
  std::uint64_t audit_rotate_bytes = 0;  ///< rotate to <log>.1 at this size; 0: only on SIGHUP
  LogLevel log_level = LogLevel::info;
};

/// The raw text of every setting, as CLI11 collected it from the command line or the
/// environment, before any value is interpreted.
struct RawSettings {
  struct Entry {
    std::string value;            ///< the text given; empty with given=true means a bare flag
    CLI::Option* option = nullptr;
  };
  std::vector<Entry> entries;  ///< one per row of the settings table, in table order
};

/// Adds every flag (bound to its environment variable, documented for --help) to `app`.
/// `raw` must outlive the parse.
void add_settings(CLI::App& app, RawSettings& raw);

/// Interprets the collected text. On a bad value returns the one-line message
/// "TOOLS_GRPC_PORT / --port: 'abc' is not a port number (1-65535)" (without program name).
[[nodiscard]] tl::expected<ServerConfig, std::string> resolve_settings(const RawSettings& raw);

}  // namespace tools_server
