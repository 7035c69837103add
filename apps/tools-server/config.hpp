// SPDX-License-Identifier: Apache-2.0
// Server configuration: every setting is a CLI11 flag bound to an environment variable.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
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
  std::string listen = "127.0.0.1:50054";  ///< "host:port" (port may be 0) or "unix:/abs/path"
  std::filesystem::path sandbox_dir = "/tmp/pagi-sandbox";
  bool safe_mode = false;
  std::chrono::milliseconds timeout{10'000};
  /// The isolation asked for; unset ("auto", the default): the strongest that works here,
  /// probed at start-up in the order native, bwrap, cwd.
  std::optional<pagi_exec::Isolation> isolation;
  /// Refuse to start when the isolation does not work. Unset: required for native (asking for
  /// the sandbox and silently not getting it is never right), not for bwrap (the seed's fallback);
  /// with auto, true refuses to start when only cwd works.
  std::optional<bool> require_isolation;

  [[nodiscard]] bool isolation_required() const noexcept {
    return require_isolation.value_or(isolation == pagi_exec::Isolation::native);
  }
  std::filesystem::path bwrap_path = "/usr/bin/bwrap";
  std::uint64_t max_output_bytes = 32 * 1024;
  std::uint64_t max_output_lines = 200;
  int max_concurrency = 64;  ///< executions running at once (cheap RPCs have threads besides)
  std::optional<int> max_concurrency_per_twin;      ///< unset: pagi_exec::default_per_twin_limit
  std::optional<std::uint64_t> memory_budget_bytes;  ///< unset: half the host's memory; 0: none
  std::size_t history_size = 1000;
  pagi_exec::RequestLimits request_limits;  ///< most args and bytes one request may carry
  pagi_exec::Limits limits;  ///< the resource limits; timeout and output caps are the fields above
  std::uint32_t run_as_uid = 65534;  ///< commands' uid and gid when the server is root (every mode)
  std::uint32_t run_as_gid = 65534;
  bool run_as_root = false;          ///< cwd/bwrap: keep the server's uid, as the original did (unsafe)
  pagi_exec::IdRange native_ids = pagi_exec::default_native_ids;  ///< native, as root: a uid/gid per run
  std::string auth = "none";             ///< none, token or mtls
  bool auth_explicit = false;            ///< TOOLS_AUTH / --auth was given (none by choice)
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

/// True for a unix socket or a host:port on loopback (127.x.x.x, [::1], localhost).
[[nodiscard]] bool is_loopback(std::string_view listen);

/// Adds every flag (bound to its environment variable, documented for --help) to `app`.
/// `raw` must outlive the parse.
void add_settings(CLI::App& app, RawSettings& raw);

/// Interprets the collected text. On a bad value returns the one-line message
/// "TOOLS_GRPC_PORT / --port: 'abc' is not a port number (1-65535)" (without program name).
[[nodiscard]] tl::expected<ServerConfig, std::string> resolve_settings(const RawSettings& raw);

}  // namespace tools_server
