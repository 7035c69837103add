// SPDX-License-Identifier: Apache-2.0
// Server configuration: one table of settings, parsed as text and interpreted with typed parsers.
//
// CLI11 collects every value as a string (from the flag, else from the environment variable), and
// the parsers below interpret it. CLI11's own conversion errors name only the flag, never the
// variable a value came from; an operator who set TOOLS_GRPC_PORT=abc should read that name.
#include "config.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <limits>
#include <string_view>

#include <CLI/CLI.hpp>

namespace tools_server {
namespace {

// Error text for a bad value ("is not a port number (1-65535)"); empty when the value is fine.
using Problem = std::string;

[[nodiscard]] std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// An unsigned decimal in [min, max], the whole text and nothing else ("+5", " 5", "5ms" fail).
[[nodiscard]] std::optional<std::uint64_t> parse_uint(std::string_view text, std::uint64_t min, std::uint64_t max) {
  std::uint64_t value = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc{} || ptr != end || value < min || value > max) return std::nullopt;
  return value;
}

// true/false/1/0/yes/no, any case; a bare flag (empty text) means true.
[[nodiscard]] std::optional<bool> parse_bool(std::string_view text) {
  const auto word = lower(text);
  if (word.empty() || word == "true" || word == "1" || word == "yes") return true;
  if (word == "false" || word == "0" || word == "no") return false;
  return std::nullopt;
}

constexpr const char* bool_problem = "is not a boolean (true/false, 1/0, yes/no)";

[[nodiscard]] Problem apply_bool(std::string_view text, bool& out) {
  const auto value = parse_bool(text);
  if (!value) return bool_problem;
  out = *value;
  return {};
}

template <class T>
[[nodiscard]] Problem apply_uint(std::string_view text, std::uint64_t min, std::uint64_t max, const char* what,
                                 T& out) {
  const auto value = parse_uint(text, min, max);
  if (!value) return std::string("is not ") + what + " (" + std::to_string(min) + "-" + std::to_string(max) + ")";
  out = static_cast<T>(*value);
  return {};
}

// "host:port" with a numeric port 0-65535 ("[::1]:0" too), or "unix:/absolute/path".
[[nodiscard]] Problem check_listen(std::string_view text) {
  constexpr const char* accepted = "is not a listen address (host:port with port 0-65535, or unix:/absolute/path)";
  if (text.starts_with("unix:")) return text.size() > 6 && text[5] == '/' ? Problem{} : accepted;
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return accepted;
  if (!parse_uint(text.substr(colon + 1), 0, 65535)) return accepted;
  return {};
}

// A size given in MiB (at least `min`, at most 1 TiB), stored in bytes.
[[nodiscard]] Problem apply_mib(std::string_view text, std::uint64_t min, std::uint64_t& bytes) {
  std::uint64_t mib = 0;
  auto problem = apply_uint(text, min, 1 << 20, "a size in MiB", mib);
  if (problem.empty()) bytes = mib << 20;
  return problem;
}

// A duration in ms in [min, max] into a setting grpc leaves at its default when unset.
[[nodiscard]] Problem apply_optional_ms(std::string_view text, std::uint64_t min, std::uint64_t max,
                                        std::optional<std::chrono::milliseconds>& out) {
  std::int64_t ms = 0;
  auto problem = apply_uint(text, min, max, "a duration in milliseconds", ms);
  if (problem.empty()) out = std::chrono::milliseconds(ms);
  return problem;
}

// grpc takes its channel arguments as int: nothing above INT_MAX fits.
constexpr std::uint64_t grpc_int_max = std::numeric_limits<int>::max();

[[nodiscard]] Problem apply_message_bytes(std::string_view text, std::optional<std::uint32_t>& out) {
  std::uint32_t bytes = 0;
  auto problem = apply_uint(text, 1024, grpc_int_max, "a message size in bytes", bytes);
  if (problem.empty()) out = bytes;
  return problem;
}

[[nodiscard]] Problem apply_path(std::string_view text, std::filesystem::path& out) {
  const std::filesystem::path path(text);
  if (!path.is_absolute()) return "is not an absolute path";
  out = path;
  return {};
}

// Comma-separated entries, each trimmed of spaces; empty entries are skipped.
[[nodiscard]] std::vector<std::string_view> comma_list(std::string_view text) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    const auto comma = text.find(',');
    auto item = text.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) out.push_back(item);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
  }
  return out;
}

// name=address,...: the egress proxy's own answers for names (a name may repeat).
[[nodiscard]] Problem apply_egress_hosts(std::string_view text, std::map<std::string, std::vector<std::string>>& out) {
  std::map<std::string, std::vector<std::string>> hosts;
  for (const auto entry : comma_list(text)) {
    const auto eq = entry.find('=');
    const auto name = pagi_exec::normalize_egress_host(entry.substr(0, eq == std::string_view::npos ? 0 : eq));
    const std::string address(eq == std::string_view::npos ? std::string_view{} : entry.substr(eq + 1));
    if (name.empty() || !pagi_exec::is_ip_literal(address)) {
      return "entry '" + std::string(entry) + "' is not name=address (a host name, '=', an IPv4 or IPv6 address)";
    }
    hosts[name].push_back(address);
  }
  out = std::move(hosts);
  return {};
}

// CIDR ranges the egress proxy may reach although they are blocked by default.
[[nodiscard]] Problem apply_egress_ranges(std::string_view text, std::vector<std::string>& out) {
  std::vector<std::string> ranges;
  for (const auto entry : comma_list(text)) {
    if (auto range = pagi_exec::check_egress_range(entry); !range) return range.error().message();
    ranges.emplace_back(entry);
  }
  out = std::move(ranges);
  return {};
}

// One configurable setting: its flag, its variable, its help, and how its text becomes a value.
struct Setting {
  const char* flag;
  const char* env;
  const char* type_name;
  const char* help;
  bool is_bool;  // the flag may be given bare (--safe-mode), meaning true
  Problem (*apply)(std::string_view text, ServerConfig& config);
};

// The order matters once: --listen comes after --port, so that an explicit address wins.
// std::to_array counts the rows: branches that each add a setting cannot disagree on a size.
const auto settings = std::to_array<Setting>({
    {"--port", "TOOLS_GRPC_PORT", "PORT", "TCP port to listen on, on loopback 127.0.0.1 (default 50054)", false,
     [](std::string_view t, ServerConfig& c) {
       std::uint16_t port = 0;
       auto problem = apply_uint(t, 1, 65535, "a port number", port);
       if (problem.empty()) c.listen = "127.0.0.1:" + std::to_string(port);
       return problem;
     }},
    {"--listen", "TOOLS_GRPC_ADDR", "ADDR",
     "address to listen on: host:port (port 0 picks a free one; 0.0.0.0:<port> for every interface, which "
     "needs TOOLS_AUTH) or unix:/path; overrides --port (default 127.0.0.1:<port>)",
     false,
     [](std::string_view t, ServerConfig& c) {
       auto problem = check_listen(t);
       if (problem.empty()) c.listen = std::string(t);
       return problem;
     }},
    {"--sandbox-dir", "SANDBOX_DIR", "DIR", "absolute folder holding the twins' workspaces (default /tmp/pagi-sandbox)",
     false, [](std::string_view t, ServerConfig& c) { return apply_path(t, c.host.sandbox.root_dir); }},
    {"--safe-mode", "SAFE_MODE", "BOOL", "safe mode, whatever the policy file says: refuse the shell bridge, '*' grants nothing, no network, "
     "limits capped (default false)", true,
     [](std::string_view t, ServerConfig& c) { return apply_bool(t, c.host.safe_mode); }},
    {"--timeout-ms", "TOOLS_EXEC_TIMEOUT_MS", "MS", "wall-clock limit of one execution in ms (default 10000)", false,
     [](std::string_view t, ServerConfig& c) {
       std::int64_t ms = 0;
       auto problem = apply_uint(t, 1, static_cast<std::uint64_t>(pagi_exec::max_timeout.count()),
                                 "a time limit in milliseconds", ms);
       c.host.sandbox.limits.timeout = std::chrono::milliseconds(ms);
       return problem;
     }},
    {"--isolation", "TOOLS_ISOLATION", "KIND",
     "how commands are contained: auto (the strongest that works here: native, else bwrap, else cwd), native, "
     "bwrap or cwd (default auto)",
     false,
     [](std::string_view t, ServerConfig& c) {
       if (t == "auto") {
         c.host.isolation.reset();
         return Problem{};
       }
       const auto kind = pagi_exec::isolation_from_string(t);
       if (!kind) return Problem("is not an isolation kind (auto, native, bwrap, cwd)");
       c.host.isolation = *kind;
       return Problem{};
     }},
    {"--use-bwrap", "TOOLS_USE_BWRAP", "BOOL", "same as --isolation bwrap (default false)", true,
     [](std::string_view t, ServerConfig& c) {
       bool on = false;
       auto problem = apply_bool(t, on);
       if (on) c.host.isolation = pagi_exec::Isolation::bwrap;
       return problem;
     }},
    {"--require-isolation", "TOOLS_REQUIRE_ISOLATION", "BOOL",
     "refuse to start when the requested isolation does not work, instead of falling back to cwd "
     "(default: true for native, false for bwrap)",
     true, [](std::string_view t, ServerConfig& c) {
       bool required = false;
       auto problem = apply_bool(t, required);
       c.host.require_isolation = required;
       return problem;
     }},
    {"--bwrap-path", "TOOLS_BWRAP_PATH", "PATH", "absolute path of the bubblewrap binary (default /usr/bin/bwrap)",
     false, [](std::string_view t, ServerConfig& c) { return apply_path(t, c.host.sandbox.bwrap_path); }},
    {"--max-output-bytes", "TOOLS_MAX_OUTPUT_BYTES", "BYTES",
     "bytes kept per output stream; the rest is dropped and reported (default 32768)", false,
     [](std::string_view t, ServerConfig& c) {
       return apply_uint(t, 1, pagi_exec::max_output_bytes, "a byte count", c.host.sandbox.limits.output.max_bytes);
     }},
    {"--max-output-lines", "TOOLS_MAX_OUTPUT_LINES", "LINES", "lines kept per output stream (default 200)", false,
     [](std::string_view t, ServerConfig& c) {
       return apply_uint(t, 1, 1'000'000, "a line count", c.host.sandbox.limits.output.max_lines);
     }},
    {"--max-concurrency", "TOOLS_MAX_CONCURRENCY", "N",
     "executions running at once, all twins together; further ones get RESOURCE_EXHAUSTED at once (HealthCheck, "
     "CheckPolicy, history calls and refusals are served besides) (default 64)",
     false,
     [](std::string_view t, ServerConfig& c) { return apply_uint(t, 1, 4096, "an execution count", c.host.max_concurrency); }},
    {"--max-concurrency-per-twin", "TOOLS_MAX_CONCURRENCY_PER_TWIN", "N",
     "executions of one twin running at once; further ones get RESOURCE_EXHAUSTED at once (default a quarter of "
     "TOOLS_MAX_CONCURRENCY, at least 1)",
     false,
     [](std::string_view t, ServerConfig& c) {
       std::uint32_t n = 0;
       auto problem = apply_uint(t, 1, 4096, "an execution count", n);
       c.host.max_concurrency_per_twin = n;
       return problem;
     }},
    {"--memory-budget-mb", "TOOLS_MEMORY_BUDGET_MB", "MIB",
     "sum of the memory limits of the executions running at once; one that would pass it gets "
     "RESOURCE_EXHAUSTED at once; 0 = no budget (default half of the host's memory)",
     false,
     [](std::string_view t, ServerConfig& c) {
       std::uint64_t bytes = 0;
       auto problem = apply_mib(t, 0, bytes);
       c.host.memory_budget_bytes = bytes;
       return problem;
     }},
    {"--max-args", "TOOLS_MAX_ARGS", "N",
     "most arguments one request may carry; beyond it the request is refused before it is judged (default 1024)",
     false,
     [](std::string_view t, ServerConfig& c) {
       return apply_uint(t, 1, 1'000'000, "an argument count", c.host.request_limits.max_args);
     }},
    {"--max-request-bytes", "TOOLS_MAX_REQUEST_BYTES", "BYTES",
     "most bytes one request may carry (command, args, ids and metadata together); beyond it the request is "
     "refused before it is judged (default 1048576; gRPC itself refuses messages over "
     "TOOLS_MAX_RECEIVE_MESSAGE_BYTES)",
     false,
     [](std::string_view t, ServerConfig& c) {
       return apply_uint(t, 1024, 1ULL << 30, "a byte count", c.host.request_limits.max_request_bytes);
     }},
    {"--history-size", "TOOLS_HISTORY_SIZE", "N", "executions remembered for audit (default 1000)", false,
     [](std::string_view t, ServerConfig& c) {
       return apply_uint(t, 1, 1'000'000, "a history size", c.host.history_size);
     }},
    {"--history", "TOOLS_HISTORY", "STORE",
     "where execution records are kept: memory (a ring of TOOLS_HISTORY_MAX_RECORDS, lost on restart), "
     "sqlite:/absolute/file.db (kept across restarts; the file and its folder are created), never inside "
     "SANDBOX_DIR, or a postgresql://user:password@host:5432/db URI (shared by several servers; the schema is "
     "created and migrated at start-up; the password is never logged) (default sqlite:<TOOLS_STATE_DIR>/history.db)",
     false,
     [](std::string_view t, ServerConfig& c) {
       auto store = pagi_exec::parse_store_location(t, c.host.history_store);
       if (!store) return store.error().context;
       c.host.history_store = *store;
       return Problem();
     }},
    {"--history-max-records", "TOOLS_HISTORY_MAX_RECORDS", "N",
     "most execution records kept; the oldest go first (default TOOLS_HISTORY_SIZE's value)", false,
     [](std::string_view t, ServerConfig& c) {
       std::size_t records = 0;
       auto problem = apply_uint(t, 1, 1'000'000'000, "a record count", records);
       if (problem.empty()) c.host.history_max_records = records;
       return problem;
     }},
    {"--history-max-age-days", "TOOLS_HISTORY_MAX_AGE_DAYS", "DAYS",
     "sqlite, postgresql: records older than this are removed (at start-up and every 256 records); 0 = kept "
     "whatever their age (default 0)",
     false,
     [](std::string_view t, ServerConfig& c) {
       return apply_uint(t, 0, 36'500, "a number of days", c.host.history_store.max_age_days);
     }},
    {"--history-pool-size", "TOOLS_HISTORY_POOL_SIZE", "N",
     "postgresql: connections kept open to the database, shared by all requests (default 4)", false,
     [](std::string_view t, ServerConfig& c) {
       return apply_uint(t, 1, 256, "a connection count", c.host.history_store.pool_size);
     }},
    {"--state-dir", "TOOLS_STATE_DIR", "DIR",
     "absolute folder of the server's own files (the default history database), created owner-only; never inside "
     "SANDBOX_DIR, where twins' commands could reach it (default <SANDBOX_DIR>.state, beside it)",
     false, [](std::string_view t, ServerConfig& c) { return apply_path(t, c.state_dir); }},
    {"--history-queue-records", "TOOLS_HISTORY_QUEUE_RECORDS", "N",
     "sqlite, postgresql: records held in memory while the database cannot take them, written in order once it can; beyond "
     "it the oldest is dropped and the gap logged (the audit log keeps every record) (default 4096)",
     false,
     [](std::string_view t, ServerConfig& c) {
       return apply_uint(t, 1, 1'000'000, "a record count", c.host.history_store.queue_records);
     }},
    {"--history-queue-mb", "TOOLS_HISTORY_QUEUE_MB", "MIB",
     "sqlite, postgresql: the most memory those held records take (default 64)", false,
     [](std::string_view t, ServerConfig& c) { return apply_mib(t, 1, c.host.history_store.queue_bytes); }},
    {"--node-id", "TOOLS_NODE_ID", "ID",
     "names this server in every execution record and audit record: 1-63 letters, digits, '.', '-' or '_' "
     "(default the host name)",
     false,
     [](std::string_view t, ServerConfig& c) {
       if (auto valid = pagi_exec::validate_node_id(t); !valid) return valid.error().context;
       c.host.node_id = std::string(t);
       return Problem();
     }},
    {"--memory-limit-mb", "TOOLS_MEMORY_LIMIT_MB", "MIB",
     "memory (and swap) of one execution's whole process tree, cgroup-enforced (native; cwd and bwrap when the "
     "server can make cgroups); 0 = none (default 512)",
     false,
     [](std::string_view t, ServerConfig& c) { return apply_mib(t, 0, c.host.sandbox.limits.memory_bytes); }},
    {"--max-processes", "TOOLS_MAX_PROCESSES", "N",
     "processes and threads of one execution at once, cgroup-enforced (native; cwd and bwrap when the server can "
     "make cgroups); 0 = none (default 128)", false,
     [](std::string_view t, ServerConfig& c) {
       return apply_uint(t, 0, 1'000'000, "a process count", c.host.sandbox.limits.max_processes);
     }},
    {"--cpu-limit-s", "TOOLS_CPU_LIMIT_S", "SECONDS",
     "CPU seconds of each process (RLIMIT_CPU), every mode; 0 = none (default 30)", false,
     [](std::string_view t, ServerConfig& c) {
       std::uint64_t seconds = 0;
       auto problem = apply_uint(t, 0, 86'400, "a number of seconds", seconds);
       c.host.sandbox.limits.cpu_time = std::chrono::seconds(seconds);
       return problem;
     }},
    {"--file-size-limit-mb", "TOOLS_FILE_SIZE_LIMIT_MB", "MIB",
     "largest file a command may write (RLIMIT_FSIZE), every mode; 0 = none (default 256)", false,
     [](std::string_view t, ServerConfig& c) { return apply_mib(t, 0, c.host.sandbox.limits.file_size_bytes); }},
    {"--open-files", "TOOLS_OPEN_FILES", "N", "open descriptors per process (RLIMIT_NOFILE), every mode (default 1024)",
     false,
     [](std::string_view t, ServerConfig& c) {
       return apply_uint(t, 16, 1'048'576, "a descriptor count", c.host.sandbox.limits.open_files);
     }},
    {"--uid-pool", "TOOLS_UID_POOL", "FIRST:COUNT",
     "native, server as root: host ids lent to runs, one uid/gid per run at a time (FIRST+1 ...); FIRST is the "
     "group that may read twins' folders; 'off' = every run is uid 65534 (default 1879048192:1024)",
     false,
     [](std::string_view t, ServerConfig& c) {
       if (t == "off") {
         c.host.sandbox.native_ids = {};
         return Problem{};
       }
       const auto colon = t.find(':');
       const auto first = colon == std::string_view::npos ? std::nullopt : parse_uint(t.substr(0, colon), 1, 0xFFFFFFFEULL);
       const auto count = colon == std::string_view::npos
                              ? std::nullopt
                              : parse_uint(t.substr(colon + 1), 2, pagi_exec::max_native_ids);
       if (!first || !count || *first + *count > 0xFFFFFFFFULL || (*first <= 65535 && 65534 < *first + *count)) {
         return Problem("is not FIRST:COUNT (COUNT 2-" + std::to_string(pagi_exec::max_native_ids) +
                        ", the range holding neither 0, 65534, 65535 nor 4294967295) or 'off'");
       }
       c.host.sandbox.native_ids = {static_cast<std::uint32_t>(*first), static_cast<std::uint32_t>(*count)};
       return Problem{};
     }},
    {"--tmpfs-size-mb", "TOOLS_TMPFS_SIZE_MB", "MIB",
     "native and bwrap: size of the private /tmp and of the working folder /work, each (default 64)", false,
     [](std::string_view t, ServerConfig& c) { return apply_mib(t, 1, c.host.sandbox.limits.tmpfs_bytes); }},
    {"--run-as-uid", "TOOLS_RUN_AS_UID", "UID",
     "uid commands run as when the server is root, in every mode; 0 only with TOOLS_RUN_AS_ROOT (default 65534)",
     false,
     [](std::string_view t, ServerConfig& c) { return apply_uint(t, 0, 4'294'967'294, "a uid", c.host.sandbox.sandbox_uid); }},
    {"--run-as-gid", "TOOLS_RUN_AS_GID", "GID",
     "gid (no supplementary groups) commands run as when the server is root; 0 only with TOOLS_RUN_AS_ROOT "
     "(default 65534)",
     false,
     [](std::string_view t, ServerConfig& c) { return apply_uint(t, 0, 4'294'967'294, "a gid", c.host.sandbox.sandbox_gid); }},
    {"--run-as-root", "TOOLS_RUN_AS_ROOT", "BOOL",
     "cwd and bwrap: run commands as the server's own uid (root when it is root) without no_new_privs, as the "
     "original did; UNSAFE, warned at start-up (default false)",
     true, [](std::string_view t, ServerConfig& c) { return apply_bool(t, c.host.sandbox.run_as_root); }},
    {"--allow-host-network", "TOOLS_ALLOW_HOST_NETWORK", "BOOL",
     "let the policy give twins network = \"host\", the host's whole network (its loopback services, this "
     "server's port, the LAN); warned at start-up and in HealthCheck; without it such a policy is refused (default "
     "false)",
     true, [](std::string_view t, ServerConfig& c) { return apply_bool(t, c.host.allow_host_network); }},
    {"--egress-hosts", "TOOLS_EGRESS_HOSTS", "LIST",
     "native, network = \"egress\": names the egress proxy answers itself instead of asking DNS, as "
     "name=address[,name=address...] (a name may repeat for several addresses); for pinned upstreams and tests; "
     "the address checks still apply (default: none, DNS)",
     false, [](std::string_view t, ServerConfig& c) { return apply_egress_hosts(t, c.host.sandbox.egress.hosts); }},
    {"--egress-allow-ranges", "TOOLS_EGRESS_ALLOW_RANGES", "LIST",
     "native, network = \"egress\": CIDR ranges the proxy may connect to although they are loopback, private, "
     "link-local, multicast or this host's own, e.g. 10.20.0.0/16 for an internal mirror (default: none)",
     false, [](std::string_view t, ServerConfig& c) { return apply_egress_ranges(t, c.host.sandbox.egress.allowed_ranges); }},
    {"--egress-max-connections", "TOOLS_EGRESS_MAX_CONNECTIONS", "N",
     "native, network = \"egress\": connections one run may have open through the proxy at once; one more is "
     "refused with 403 (default 32)",
     false,
     [](std::string_view t, ServerConfig& c) {
       return apply_uint(t, 1, 65535, "a connection count", c.host.sandbox.egress.max_connections_per_run);
     }},
    {"--egress-bandwidth", "TOOLS_EGRESS_BANDWIDTH", "BYTES_PER_S",
     "native, network = \"egress\": bytes per second one run may move through the proxy, both directions "
     "together; 0 = unlimited (default 0)",
     false,
     [](std::string_view t, ServerConfig& c) {
       return apply_uint(t, 0, std::uint64_t{1} << 40, "a rate in bytes per second",
                         c.host.sandbox.egress.bytes_per_second_per_run);
     }},
    {"--cgroup-favordynmods", "TOOLS_CGROUP_FAVORDYNMODS", "BOOL",
     "root: at start-up turn on cgroup2's kernel-wide favordynmods, so a run joins its cgroup without waiting for "
     "an RCU grace period (on cgroup v1 about 8-12 ms on some runs); forks and exits on the whole host get slightly "
     "dearer and the setting outlives the server (default false)",
     true, [](std::string_view t, ServerConfig& c) { return apply_bool(t, c.host.favor_cgroup_moves); }},
    {"--workspace-quota-mb", "TOOLS_WORKSPACE_QUOTA_MB", "MIB",
     "what each twin's workspace (SANDBOX_DIR/<twin>) may occupy on disk: a file_write past it is refused; in cwd "
     "and bwrap, a run that leaves it over is reported and the twin's further writes and runs are refused until it "
     "is back under; a policy's workspace_mb can only lower it; 0 = none (default 256)",
     false, [](std::string_view t, ServerConfig& c) { return apply_mib(t, 0, c.host.sandbox.limits.workspace_bytes); }},
    {"--auth", "TOOLS_AUTH", "MODE",
     "how callers prove their twin: none (the request's twin_id is trusted), token (Bearer token) or mtls "
     "(client certificate); listening beyond loopback needs token or mtls, or none given explicitly (default "
     "none, loopback only)",
     false,
     [](std::string_view t, ServerConfig& c) {
       if (t != "none" && t != "token" && t != "mtls") return Problem("is not an authentication mode (none, token, mtls)");
       c.auth = std::string(t);
       c.auth_explicit = true;
       return Problem{};
     }},
    {"--auth-tokens-file", "TOOLS_AUTH_TOKENS_FILE", "PATH",
     "token: a file of '<sha256 hex of a token> <twin>' lines ('#' comments); plaintext tokens never appear", false,
     [](std::string_view t, ServerConfig& c) { return apply_path(t, c.auth_tokens_file); }},
    {"--tls-cert", "TOOLS_TLS_CERT", "PATH", "serve TLS with this certificate chain (PEM); needs --tls-key", false,
     [](std::string_view t, ServerConfig& c) { return apply_path(t, c.tls_cert); }},
    {"--tls-key", "TOOLS_TLS_KEY", "PATH", "the TLS private key (PEM)", false,
     [](std::string_view t, ServerConfig& c) { return apply_path(t, c.tls_key); }},
    {"--tls-client-ca", "TOOLS_TLS_CLIENT_CA", "PATH",
     "mtls: client certificates must chain to this CA (PEM); the twin is read from the certificate", false,
     [](std::string_view t, ServerConfig& c) { return apply_path(t, c.tls_client_ca); }},
    {"--policy", "TOOLS_POLICY_FILE", "PATH",
     "the policy file (TOML, see docs/policy.md); SIGHUP reloads it (default: the embedded seed matrix, the same "
     "as examples/policy.toml)",
     false, [](std::string_view t, ServerConfig& c) { return apply_path(t, c.host.policy_file); }},
    {"--audit-log", "TOOLS_AUDIT_LOG", "PATH",
     "append a JSON Lines record of every decision and execution to this file (see docs/audit.md); SIGHUP "
     "reopens it (default: none)",
     false, [](std::string_view t, ServerConfig& c) { return apply_path(t, c.host.audit.path); }},
    {"--audit-sync", "TOOLS_AUDIT_SYNC", "POLICY",
     "every: fdatasync each record before answering; interval: at most once a second (default every)", false,
     [](std::string_view t, ServerConfig& c) {
       if (t != "every" && t != "interval") return Problem("is not a sync policy (every, interval)");
       c.host.audit.sync = t == "every" ? pagi_exec::AuditOptions::Sync::every : pagi_exec::AuditOptions::Sync::interval;
       return Problem{};
     }},
    {"--audit-required", "TOOLS_AUDIT_REQUIRED", "BOOL",
     "refuse executions the audit log cannot record (UNAVAILABLE) instead of serving on and reporting the "
     "failure in HealthCheck (default false)",
     true, [](std::string_view t, ServerConfig& c) { return apply_bool(t, c.host.audit.required); }},
    {"--audit-rotate-mb", "TOOLS_AUDIT_ROTATE_MB", "MIB",
     "rename the audit log to <log>.1 and start a new one at this size; 0 = only on SIGHUP (default 0)", false,
     [](std::string_view t, ServerConfig& c) { return apply_mib(t, 0, c.host.audit.rotate_bytes); }},
    {"--keepalive-time-ms", "TOOLS_KEEPALIVE_TIME_MS", "MS",
     "ping an idle connection this often to find dead peers; clients may then ping as often, also without calls "
     "(default 7200000, grpc's 2 h)",
     false, [](std::string_view t, ServerConfig& c) { return apply_optional_ms(t, 1000, grpc_int_max, c.channel.keepalive_time); }},
    {"--keepalive-timeout-ms", "TOOLS_KEEPALIVE_TIMEOUT_MS", "MS",
     "close a connection whose keepalive ping is not answered within this (default 20000)", false,
     [](std::string_view t, ServerConfig& c) { return apply_optional_ms(t, 1000, grpc_int_max, c.channel.keepalive_timeout); }},
    {"--max-receive-message-bytes", "TOOLS_MAX_RECEIVE_MESSAGE_BYTES", "BYTES",
     "largest request message gRPC accepts; a larger one gets RESOURCE_EXHAUSTED (default 4194304, grpc's 4 MiB)",
     false, [](std::string_view t, ServerConfig& c) { return apply_message_bytes(t, c.channel.max_receive_message_bytes); }},
    {"--max-send-message-bytes", "TOOLS_MAX_SEND_MESSAGE_BYTES", "BYTES",
     "largest answer message gRPC sends; a larger one fails with RESOURCE_EXHAUSTED (default: no limit)", false,
     [](std::string_view t, ServerConfig& c) { return apply_message_bytes(t, c.channel.max_send_message_bytes); }},
    {"--max-connection-age-ms", "TOOLS_MAX_CONNECTION_AGE_MS", "MS",
     "send GOAWAY to a connection this old, so clients reconnect and re-balance across replicas (default: never)",
     false, [](std::string_view t, ServerConfig& c) { return apply_optional_ms(t, 100, grpc_int_max, c.channel.max_connection_age); }},
    {"--max-connection-age-grace-ms", "TOOLS_MAX_CONNECTION_AGE_GRACE_MS", "MS",
     "after that GOAWAY, how long the connection's calls may still run before it is closed (default: as long as "
     "they take)",
     false, [](std::string_view t, ServerConfig& c) { return apply_optional_ms(t, 0, grpc_int_max, c.channel.max_connection_age_grace); }},
    {"--drain-timeout-ms", "TOOLS_DRAIN_TIMEOUT_MS", "MS",
     "after SIGTERM or SIGINT, how long running executions get to finish (new ones are refused with UNAVAILABLE) "
     "before they are stopped; a second signal stops them at once; 0 = stop them at once (default 30000)",
     false,
     [](std::string_view t, ServerConfig& c) {
       std::int64_t ms = 0;
       auto problem = apply_uint(t, 0, 3'600'000, "a duration in milliseconds", ms);
       c.drain_timeout = std::chrono::milliseconds(ms);
       return problem;
     }},
    {"--metrics-addr", "TOOLS_METRICS_ADDR", "ADDR",
     "serve Prometheus metrics (GET /metrics, HTTP) on this host:port (port 0 picks a free one); they carry no "
     "twin data, but listening beyond loopback is warned about (default: off)",
     false,
     [](std::string_view t, ServerConfig& c) {
       if (t.starts_with("unix:") || !check_listen(t).empty()) {
         return Problem("is not a metrics address (host:port with port 0-65535)");
       }
       c.metrics_addr = std::string(t);
       return Problem{};
     }},
    {"--log-level", "LOG_LEVEL", "LEVEL", "error, warn, info or debug (default info)", false,
     [](std::string_view t, ServerConfig& c) {
       const auto level = log_level_from_string(lower(t));
       if (!level) return Problem("is not a log level (error, warn, info, debug)");
       c.log_level = *level;
       return Problem{};
     }},
    {"--log-format", "TOOLS_LOG_FORMAT", "FORMAT",
     "text (one line per event: time, LEVEL, message, name=value fields) or json (one object per line: time, "
     "level, message and the event's fields) (default text)",
     false,
     [](std::string_view t, ServerConfig& c) {
       const auto format = log_format_from_string(lower(t));
       if (!format) return Problem("is not a log format (text, json)");
       c.log_format = *format;
       return Problem{};
     }},
});

[[nodiscard]] std::string describe(const Setting& s, std::string_view value, const Problem& problem) {
  // masked_uri: a refused TOOLS_HISTORY URI may carry a password; other values pass unchanged.
  return std::string(s.env) + " / " + s.flag + ": '" + pagi_exec::masked_uri(value) + "' " + problem;
}

// Settings that only make sense together.
[[nodiscard]] std::string check_security(const ServerConfig& c) {
  if (c.tls_cert.empty() != c.tls_key.empty()) {
    return "TOOLS_TLS_CERT / --tls-cert and TOOLS_TLS_KEY / --tls-key: give both (a certificate and its key) or neither";
  }
  if (c.auth == "token" && c.auth_tokens_file.empty()) {
    return "TOOLS_AUTH / --auth: 'token' needs TOOLS_AUTH_TOKENS_FILE / --auth-tokens-file";
  }
  if (c.auth == "mtls" && (c.tls_cert.empty() || c.tls_client_ca.empty())) {
    return "TOOLS_AUTH / --auth: 'mtls' needs TOOLS_TLS_CERT, TOOLS_TLS_KEY and TOOLS_TLS_CLIENT_CA "
           "(--tls-cert, --tls-key, --tls-client-ca)";
  }
  if (c.auth != "mtls" && !c.tls_client_ca.empty()) {
    return "TOOLS_TLS_CLIENT_CA / --tls-client-ca: only used with TOOLS_AUTH=mtls";
  }
  return {};
}

// The default start-up must not hand the host to whoever reaches the port: without
// authentication the server serves loopback (or a unix socket) only, unless the operator said
// TOOLS_AUTH=none on purpose.
[[nodiscard]] std::string check_exposure(const ServerConfig& c) {
  if (c.auth != "none" || c.auth_explicit || is_loopback(c.listen)) return {};
  return "TOOLS_GRPC_ADDR / --listen: '" + c.listen +
         "' is reachable beyond loopback and no authentication is set: anyone who reaches it could run commands "
         "as any twin. Set TOOLS_AUTH=token or mtls (see README, Authentication), or listen on 127.0.0.1:<port> "
         "or unix:/path, or set TOOLS_AUTH=none to serve unauthenticated on purpose";
}

// Limits that contradict each other.
[[nodiscard]] std::string check_admission(const ServerConfig& c) {
  if (c.host.max_concurrency_per_twin && *c.host.max_concurrency_per_twin > c.host.max_concurrency) {
    return "TOOLS_MAX_CONCURRENCY_PER_TWIN / --max-concurrency-per-twin: '" +
           std::to_string(*c.host.max_concurrency_per_twin) + "' is larger than TOOLS_MAX_CONCURRENCY (" +
           std::to_string(c.host.max_concurrency) + ")";
  }
  if (c.host.memory_budget_bytes && *c.host.memory_budget_bytes != 0 && c.host.sandbox.limits.memory_bytes > *c.host.memory_budget_bytes) {
    return "TOOLS_MEMORY_BUDGET_MB / --memory-budget-mb: '" + std::to_string(*c.host.memory_budget_bytes >> 20) +
           "' is smaller than one execution's TOOLS_MEMORY_LIMIT_MB (" + std::to_string(c.host.sandbox.limits.memory_bytes >> 20) +
           "): nothing could run";
  }
  return {};
}

// A grace without an age would silently do nothing.
[[nodiscard]] std::string check_channel(const ChannelSettings& c) {
  if (c.max_connection_age_grace && !c.max_connection_age) {
    return "TOOLS_MAX_CONNECTION_AGE_GRACE_MS / --max-connection-age-grace-ms: only used with "
           "TOOLS_MAX_CONNECTION_AGE_MS / --max-connection-age-ms";
  }
  return {};
}

// `path` is `dir` or inside it, symbolic links in the part that exists followed.
[[nodiscard]] bool is_within(const std::filesystem::path& path, const std::filesystem::path& dir) {
  const auto resolved = [](const std::filesystem::path& p) {
    std::error_code ec;
    auto canonical = std::filesystem::weakly_canonical(p, ec);
    return ec ? p.lexically_normal() : canonical;
  };
  const auto relative = resolved(path).lexically_relative(resolved(dir));
  return !relative.empty() && *relative.begin() != "..";
}

// The server keeps its history across restarts unless told otherwise: in SQLite, in a folder
// beside SANDBOX_DIR (/tmp/pagi-sandbox -> /tmp/pagi-sandbox.state). A database inside
// SANDBOX_DIR is refused: a twin's command could read or change every twin's records there.
[[nodiscard]] std::string settle_history(ServerConfig& c, bool history_given) {
  const auto& sandbox = c.host.sandbox.root_dir;
  if (c.state_dir.empty()) {
    auto dir = sandbox.lexically_normal();
    if (!dir.has_filename()) dir = dir.parent_path();  // "/srv/sandbox/" names /srv/sandbox
    c.state_dir = dir.parent_path() / (dir.filename().string() + ".state");
  }
  if (!history_given) {
    c.host.history_store.kind = pagi_exec::StoreSettings::Kind::sqlite;
    c.host.history_store.path = c.state_dir / "history.db";
  }
  const auto& store = c.host.history_store;
  if (store.kind != pagi_exec::StoreSettings::Kind::sqlite || !is_within(store.path, sandbox)) return {};
  return std::string(history_given ? "TOOLS_HISTORY / --history: '" + pagi_exec::to_string(store) + "'"
                                   : "TOOLS_STATE_DIR / --state-dir: '" + c.state_dir.string() + "'") +
         " is inside SANDBOX_DIR (" + sandbox.string() +
         "), where twins' commands could reach the execution history: choose a folder outside it";
}

[[nodiscard]] tl::unexpected<pagi_exec::Error> invalid(std::string message) {
  return pagi_exec::fail(pagi_exec::Errc::invalid_config, std::move(message));
}

[[nodiscard]] std::size_t index_of(std::string_view flag) {
  for (std::size_t i = 0; i < settings.size(); ++i) {
    if (flag == settings[i].flag) return i;
  }
  return settings.size();
}

}  // namespace

bool is_loopback(std::string_view listen) {
  if (listen.starts_with("unix:")) return true;
  const auto host = listen.substr(0, listen.rfind(':'));
  return host.starts_with("127.") || host == "[::1]" || host == "localhost";
}

void add_settings(CLI::App& app, RawSettings& raw) {
  raw.entries.assign(settings.size(), {});
  for (std::size_t i = 0; i < settings.size(); ++i) {
    const auto& s = settings[i];
    auto* option = app.add_option(s.flag, raw.entries[i].value, s.help)->envname(s.env)->type_name(s.type_name);
    if (s.is_bool) option->expected(0, 1);
    raw.entries[i].option = option;
  }
}

pagi_exec::Result<ServerConfig> resolve_settings(const RawSettings& raw) {
  ServerConfig config;
  for (std::size_t i = 0; i < settings.size(); ++i) {
    const auto& entry = raw.entries[i];
    if (entry.option == nullptr || entry.option->count() == 0) continue;
    if (!settings[i].is_bool && entry.value.empty()) {
      return invalid(describe(settings[i], entry.value, "is empty"));
    }
    if (auto problem = settings[i].apply(entry.value, config); !problem.empty()) {
      return invalid(describe(settings[i], entry.value, problem));
    }
  }
  // --use-bwrap is a synonym; contradicting an explicit --isolation is an error, not a guess.
  const auto& isolation = raw.entries[index_of("--isolation")];
  const auto& use_bwrap = raw.entries[index_of("--use-bwrap")];
  if (isolation.option->count() > 0 && use_bwrap.option->count() > 0 && parse_bool(use_bwrap.value).value_or(false) &&
      pagi_exec::isolation_from_string(isolation.value) != pagi_exec::Isolation::bwrap) {
    return invalid(std::string("TOOLS_USE_BWRAP / --use-bwrap: 'true' contradicts TOOLS_ISOLATION / "
                                      "--isolation: '") + isolation.value + "'");
  }
  if (auto problem = check_security(config); !problem.empty()) return invalid(problem);
  if (!config.host.sandbox.run_as_root && (config.host.sandbox.sandbox_uid == 0 || config.host.sandbox.sandbox_gid == 0)) {
    return invalid(std::string("TOOLS_RUN_AS_UID / --run-as-uid and TOOLS_RUN_AS_GID / --run-as-gid: 0 (root) "
                                      "only with TOOLS_RUN_AS_ROOT=true / --run-as-root"));
  }
  if (auto problem = check_admission(config); !problem.empty()) return invalid(problem);
  if (auto problem = check_exposure(config); !problem.empty()) return invalid(problem);
  if (auto problem = check_channel(config.channel); !problem.empty()) return invalid(problem);
  if (auto problem = settle_history(config, raw.entries[index_of("--history")].option->count() > 0); !problem.empty()) {
    return invalid(problem);
  }
  return config;
}

}  // namespace tools_server
