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

/// The gRPC channel settings of the listener; unset: grpc's default (server_options.hpp applies them).
struct ChannelSettings {
  std::optional<std::chrono::milliseconds> keepalive_time;    ///< ping an idle connection this often (grpc: 2 h)
  std::optional<std::chrono::milliseconds> keepalive_timeout; ///< close it when a ping is not answered in this (20 s)
  std::optional<std::uint32_t> max_receive_message_bytes;     ///< larger requests: RESOURCE_EXHAUSTED (4 MiB)
  std::optional<std::uint32_t> max_send_message_bytes;        ///< larger answers: RESOURCE_EXHAUSTED (no limit)
  std::optional<std::chrono::milliseconds> max_connection_age;       ///< then GOAWAY, the client reconnects (never)
  std::optional<std::chrono::milliseconds> max_connection_age_grace; ///< for its calls to end after that (forever)
  bool operator==(const ChannelSettings&) const = default;
};

/// The validated settings of one server process: the library's (HostSettings, with their
/// defaults) and the server's own.
struct ServerConfig {
  std::string listen = "127.0.0.1:50054";  ///< "host:port" (port may be 0) or "unix:/abs/path"
  pagi_exec::HostSettings host;
  std::string auth = "none";             ///< none, token or mtls
  bool auth_explicit = false;            ///< TOOLS_AUTH / --auth was given (none by choice)
  std::filesystem::path auth_tokens_file;  ///< token: "<sha256 hex> <twin>" per line
  std::filesystem::path tls_cert, tls_key; ///< TLS server certificate chain and key (PEM)
  std::filesystem::path tls_client_ca;   ///< mtls: the CA client certificates must chain to
  LogLevel log_level = LogLevel::info;
  LogFormat log_format = LogFormat::text;
  ChannelSettings channel;
  /// After SIGTERM, how long running executions get to finish before they are stopped; 0: at once.
  std::chrono::milliseconds drain_timeout{30'000};
  std::string metrics_addr;  ///< "host:port" of the metrics listener (port may be 0); empty: none
  /// TOOLS_STATE_DIR: the server's own files (the default history database); never inside
  /// SANDBOX_DIR. Resolved: <SANDBOX_DIR>.state unless given.
  std::filesystem::path state_dir;
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

/// Interprets the collected text. On a bad value Errc::invalid_config with the one-line message
/// "TOOLS_GRPC_PORT / --port: 'abc' is not a port number (1-65535)" (without program name).
[[nodiscard]] pagi_exec::Result<ServerConfig> resolve_settings(const RawSettings& raw);

}  // namespace tools_server
