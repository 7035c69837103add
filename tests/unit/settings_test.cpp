// SPDX-License-Identifier: Apache-2.0
// Unit: the server's settings table: the defaults are the library's, values land in their
// fields, and each kind of bad value is one line naming the variable and the flag.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "config.hpp"

using namespace tools_server;

namespace {

pagi_exec::Result<ServerConfig> resolve(const std::string& command_line) {
  CLI::App app;
  RawSettings raw;
  add_settings(app, raw);
  app.parse(command_line, false);
  return resolve_settings(raw);
}

std::string error_of(const std::string& command_line) {
  const auto config = resolve(command_line);
  REQUIRE_FALSE(config);
  CHECK(config.error().code == pagi_exec::Errc::invalid_config);
  const auto message = config.error().message();
  CHECK(message.find('\n') == std::string::npos);
  return message;
}

}  // namespace

TEST_SUITE("settings") {
  TEST_CASE("nothing set: loopback, no authentication, and the library's defaults but a durable history") {
    const auto config = resolve("");
    REQUIRE(config);
    CHECK(config->listen == "127.0.0.1:50054");
    pagi_exec::HostSettings expected;
    expected.history_store = {.kind = pagi_exec::StoreSettings::Kind::sqlite,
                              .path = "/tmp/pagi-sandbox.state/history.db"};
    CHECK(config->host == expected);
    CHECK(config->state_dir == "/tmp/pagi-sandbox.state");
    CHECK(config->auth == "none");
    CHECK(config->log_level == LogLevel::info);
  }

  TEST_CASE("values land in their fields") {
    const auto config = resolve("--port 5000 --timeout-ms 5000 --max-output-bytes 100 --uid-pool off --isolation bwrap "
                                "--require-isolation --audit-sync interval --memory-budget-mb 0 --memory-limit-mb 64 "
                                "--policy /etc/p.toml --max-concurrency 8 --max-concurrency-per-twin 2 --safe-mode");
    REQUIRE_MESSAGE(config, config.error().message());
    const auto& host = config->host;
    CHECK(config->listen == "127.0.0.1:5000");
    CHECK(host.sandbox.limits.timeout == std::chrono::milliseconds(5000));
    CHECK(host.sandbox.limits.output.max_bytes == 100);
    CHECK(host.sandbox.native_ids == pagi_exec::IdRange{});
    CHECK(host.isolation == pagi_exec::Isolation::bwrap);
    CHECK(host.isolation_required());
    CHECK(host.audit.sync == pagi_exec::AuditOptions::Sync::interval);
    CHECK(host.memory_budget_bytes == 0);
    CHECK(host.sandbox.limits.memory_bytes == 64ULL << 20);
    CHECK(host.policy_file == "/etc/p.toml");
    CHECK(host.max_concurrency == 8);
    CHECK(host.max_concurrency_per_twin == 2U);
    CHECK(host.safe_mode);
    CHECK_FALSE(resolve("--isolation auto")->host.isolation);
  }

  TEST_CASE("the history's default place is beside SANDBOX_DIR or in TOOLS_STATE_DIR, never inside SANDBOX_DIR") {
    using Kind = pagi_exec::StoreSettings::Kind;
    const auto beside = resolve("--sandbox-dir /srv/twins/ --history-max-age-days 3 --history-queue-records 10 "
                                "--history-queue-mb 2");
    REQUIRE_MESSAGE(beside, beside.error().message());
    CHECK(beside->host.history_store.kind == Kind::sqlite);
    CHECK(beside->host.history_store.path == "/srv/twins.state/history.db");
    CHECK(beside->host.history_store.max_age_days == 3);
    CHECK(beside->host.history_store.queue_records == 10);
    CHECK(beside->host.history_store.queue_bytes == 2ULL << 20);
    const auto moved = resolve("--state-dir /var/lib/pagi");
    REQUIRE(moved);
    CHECK(moved->host.history_store.path == "/var/lib/pagi/history.db");
    const auto memory = resolve("--history memory --state-dir /tmp/pagi-sandbox/state");
    REQUIRE(memory);
    CHECK(memory->host.history_store.kind == Kind::memory);
    CHECK(error_of("--state-dir /tmp/pagi-sandbox/state") ==
          "TOOLS_STATE_DIR / --state-dir: '/tmp/pagi-sandbox/state' is inside SANDBOX_DIR (/tmp/pagi-sandbox), where "
          "twins' commands could reach the execution history: choose a folder outside it");
    CHECK(error_of("--sandbox-dir /srv/x --history sqlite:/srv/x/../x/twin/h.db").starts_with(
        "TOOLS_HISTORY / --history: 'sqlite:/srv/x/../x/twin/h.db' is inside SANDBOX_DIR (/srv/x)"));
    CHECK(error_of("--history-queue-records 0") ==
          "TOOLS_HISTORY_QUEUE_RECORDS / --history-queue-records: '0' is not a record count (1-1000000)");
  }

  TEST_CASE("the metrics listener is off unless an address is given, and is host:port only") {
    CHECK(resolve("")->metrics_addr.empty());
    CHECK(resolve("--metrics-addr 127.0.0.1:0")->metrics_addr == "127.0.0.1:0");
    CHECK(resolve("--metrics-addr 0.0.0.0:9464")->metrics_addr == "0.0.0.0:9464");  // warned about, not refused
    for (const char* bad : {"unix:/run/m.sock", "9464", "host:", "host:65536"}) {
      CHECK(error_of(std::string("--metrics-addr ") + bad) ==
            std::string("TOOLS_METRICS_ADDR / --metrics-addr: '") + bad +
                "' is not a metrics address (host:port with port 0-65535)");
    }
  }

  TEST_CASE("each kind of bad value is one line naming the variable and the flag") {
    CHECK(error_of("--port abc") == "TOOLS_GRPC_PORT / --port: 'abc' is not a port number (1-65535)");
    CHECK(error_of("--listen nowhere") ==
          "TOOLS_GRPC_ADDR / --listen: 'nowhere' is not a listen address (host:port with port 0-65535, or "
          "unix:/absolute/path)");
    CHECK(error_of("--sandbox-dir relative") == "SANDBOX_DIR / --sandbox-dir: 'relative' is not an absolute path");
    CHECK(error_of("--safe-mode maybe") == "SAFE_MODE / --safe-mode: 'maybe' is not a boolean (true/false, 1/0, yes/no)");
    CHECK(error_of("--timeout-ms 0") ==
          "TOOLS_EXEC_TIMEOUT_MS / --timeout-ms: '0' is not a time limit in milliseconds (1-86400000)");
    CHECK(error_of("--isolation vm") == "TOOLS_ISOLATION / --isolation: 'vm' is not an isolation kind (auto, native, bwrap, cwd)");
    CHECK(error_of("--memory-limit-mb 5x") == "TOOLS_MEMORY_LIMIT_MB / --memory-limit-mb: '5x' is not a size in MiB (0-1048576)");
    CHECK(error_of("--uid-pool 5").rfind("TOOLS_UID_POOL / --uid-pool: '5' is not FIRST:COUNT (COUNT 2-4096", 0) == 0);
    CHECK(error_of("--auth magic") == "TOOLS_AUTH / --auth: 'magic' is not an authentication mode (none, token, mtls)");
    CHECK(error_of("--audit-sync sometimes") == "TOOLS_AUDIT_SYNC / --audit-sync: 'sometimes' is not a sync policy (every, interval)");
    CHECK(error_of("--log-level loud") == "LOG_LEVEL / --log-level: 'loud' is not a log level (error, warn, info, debug)");
  }

  TEST_CASE("an empty value is named as such") {
    CLI::App app;
    RawSettings raw;
    add_settings(app, raw);
    std::vector<std::string> reversed_args{"", "--port"};  // CLI11 takes a vector in reverse order
    app.parse(reversed_args);
    const auto config = resolve_settings(raw);
    REQUIRE_FALSE(config);
    CHECK(config.error().message() == "TOOLS_GRPC_PORT / --port: '' is empty");
  }

  TEST_CASE("a value from the environment names the variable too") {
    ::setenv("TOOLS_MAX_ARGS", "0", 1);
    const auto message = error_of("");
    ::unsetenv("TOOLS_MAX_ARGS");
    CHECK(message == "TOOLS_MAX_ARGS / --max-args: '0' is not an argument count (1-1000000)");
  }

  TEST_CASE("settings that contradict each other") {
    CHECK(error_of("--isolation native --use-bwrap") ==
          "TOOLS_USE_BWRAP / --use-bwrap: 'true' contradicts TOOLS_ISOLATION / --isolation: 'native'");
    CHECK(error_of("--tls-cert /a.pem").rfind("TOOLS_TLS_CERT / --tls-cert and TOOLS_TLS_KEY / --tls-key: give both", 0) == 0);
    CHECK(error_of("--auth token") == "TOOLS_AUTH / --auth: 'token' needs TOOLS_AUTH_TOKENS_FILE / --auth-tokens-file");
    CHECK(error_of("--tls-client-ca /ca.pem") == "TOOLS_TLS_CLIENT_CA / --tls-client-ca: only used with TOOLS_AUTH=mtls");
    CHECK(error_of("--run-as-uid 0").rfind("TOOLS_RUN_AS_UID / --run-as-uid and TOOLS_RUN_AS_GID / --run-as-gid: 0 (root)", 0) == 0);
    CHECK(error_of("--max-concurrency 4 --max-concurrency-per-twin 8") ==
          "TOOLS_MAX_CONCURRENCY_PER_TWIN / --max-concurrency-per-twin: '8' is larger than TOOLS_MAX_CONCURRENCY (4)");
    CHECK(error_of("--memory-budget-mb 100 --memory-limit-mb 200").rfind(
              "TOOLS_MEMORY_BUDGET_MB / --memory-budget-mb: '100' is smaller than one execution's", 0) == 0);
    CHECK(error_of("--listen 0.0.0.0:1").rfind("TOOLS_GRPC_ADDR / --listen: '0.0.0.0:1' is reachable beyond loopback", 0) == 0);
    CHECK(resolve("--listen 0.0.0.0:1 --auth none"));  // on purpose
  }

  TEST_CASE("channel settings and the drain timeout: grpc's defaults unless set, then in their fields") {
    const auto defaults = resolve("");
    REQUIRE(defaults);
    CHECK(defaults->channel == ChannelSettings{});
    CHECK(defaults->drain_timeout == std::chrono::milliseconds(30'000));
    const auto config = resolve("--keepalive-time-ms 15000 --keepalive-timeout-ms 5000 --max-receive-message-bytes 8388608 "
                                "--max-send-message-bytes 2048 --max-connection-age-ms 500 "
                                "--max-connection-age-grace-ms 0 --drain-timeout-ms 0");
    REQUIRE_MESSAGE(config, config.error().message());
    CHECK(config->channel.keepalive_time == std::chrono::milliseconds(15'000));
    CHECK(config->channel.keepalive_timeout == std::chrono::milliseconds(5'000));
    CHECK(config->channel.max_receive_message_bytes == 8'388'608U);
    CHECK(config->channel.max_send_message_bytes == 2048U);
    CHECK(config->channel.max_connection_age == std::chrono::milliseconds(500));
    CHECK(config->channel.max_connection_age_grace == std::chrono::milliseconds(0));
    CHECK(config->drain_timeout == std::chrono::milliseconds(0));
  }

  TEST_CASE("bad channel settings and drain timeouts are one line naming the variable and the flag") {
    CHECK(error_of("--keepalive-time-ms 999") ==
          "TOOLS_KEEPALIVE_TIME_MS / --keepalive-time-ms: '999' is not a duration in milliseconds (1000-2147483647)");
    CHECK(error_of("--keepalive-timeout-ms 1s") ==
          "TOOLS_KEEPALIVE_TIMEOUT_MS / --keepalive-timeout-ms: '1s' is not a duration in milliseconds (1000-2147483647)");
    CHECK(error_of("--max-receive-message-bytes 2147483648") ==
          "TOOLS_MAX_RECEIVE_MESSAGE_BYTES / --max-receive-message-bytes: '2147483648' is not a message size in bytes "
          "(1024-2147483647)");
    CHECK(error_of("--max-send-message-bytes 10") ==
          "TOOLS_MAX_SEND_MESSAGE_BYTES / --max-send-message-bytes: '10' is not a message size in bytes (1024-2147483647)");
    CHECK(error_of("--max-connection-age-ms 0") ==
          "TOOLS_MAX_CONNECTION_AGE_MS / --max-connection-age-ms: '0' is not a duration in milliseconds (100-2147483647)");
    CHECK(error_of("--max-connection-age-ms 1000 --max-connection-age-grace-ms soon") ==
          "TOOLS_MAX_CONNECTION_AGE_GRACE_MS / --max-connection-age-grace-ms: 'soon' is not a duration in milliseconds "
          "(0-2147483647)");
    CHECK(error_of("--max-connection-age-grace-ms 1000") ==
          "TOOLS_MAX_CONNECTION_AGE_GRACE_MS / --max-connection-age-grace-ms: only used with "
          "TOOLS_MAX_CONNECTION_AGE_MS / --max-connection-age-ms");
    CHECK(error_of("--drain-timeout-ms 3600001") ==
          "TOOLS_DRAIN_TIMEOUT_MS / --drain-timeout-ms: '3600001' is not a duration in milliseconds (0-3600000)");
  }

  TEST_CASE("loopback: unix sockets, 127.x, [::1] and localhost") {
    CHECK(is_loopback("unix:/run/x.sock"));
    CHECK(is_loopback("127.0.0.2:1"));
    CHECK(is_loopback("[::1]:1"));
    CHECK(is_loopback("localhost:1"));
    CHECK_FALSE(is_loopback("0.0.0.0:1"));
    CHECK_FALSE(is_loopback("10.0.0.1:1"));
  }
}
