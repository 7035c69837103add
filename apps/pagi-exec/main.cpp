// SPDX-License-Identifier: Apache-2.0
// pagi-exec: decide (check) or decide and run (run) one request with the library, no gRPC; read
// an audit log (audit).
// It is also the smallest example of a host program linking libpagi_exec.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <filesystem>
#include <vector>

#include <pagi_exec/pagi_exec.hpp>
#include <pagi_exec/policy_file.hpp>

#include "spawner_location.hpp"

namespace {

struct Options {
  std::string twin;
  std::vector<std::string> command;  // tool, then its args
  std::string isolation = "auto";
  long long timeout_ms = pagi_exec::Limits{}.timeout.count();
  pagi_exec::HostSettings host;  // the library's settings and defaults, as the server's
};

// The policy file (or the seed matrix), with --safe-mode forcing safe mode on; exit status 2
// and the file's line and column on a bad file.
std::optional<pagi_exec::PolicyFile> load_policy(const Options& o) {
  auto file = pagi_exec::load_host_policy(o.host);
  if (!file) {
    std::cerr << "pagi-exec: " << file.error().message() << "\n";
    return std::nullopt;
  }
  return std::move(*file);
}

pagi_exec::Request to_request(const Options& o) {
  pagi_exec::Request request{.tool = o.command.empty() ? std::string() : o.command.front(), .twin_id = o.twin};
  if (!o.command.empty()) request.args.assign(o.command.begin() + 1, o.command.end());
  return request;
}

// How a decision reads: a call that cannot run as asked is the caller's mistake, not a refusal.
const char* verdict(const pagi_exec::Decision& decision) {
  if (decision.allowed) return "allowed: ";
  return decision.is_invalid_request() ? "invalid request: " : "refused: ";
}

int check(const Options& o) {
  const auto policy = load_policy(o);
  if (!policy) return 2;
  // The same judgement as a run (catalog, NUL bytes, sizes, the tool's arguments).
  const auto decision = pagi_exec::judge(policy->policy, policy->catalog, o.host.request_limits, to_request(o));
  std::cout << verdict(decision) << decision.reason << " (rule " << decision.rule << ", policy "
            << policy->policy.revision() << ")\n";
  if (decision.allowed) {
    std::cout << "network: " << pagi_exec::describe_network(decision.network, decision.allow_domains, decision.deny_domains)
              << " (as the policy grants; cwd isolation shares the host's, bwrap has none for egress)\n";
  }
  for (const auto& note : decision.notes) std::cout << "note: " << note << "\n";
  if (decision.is_invalid_request()) return pagi_exec::exit_usage;
  return decision.allowed ? 0 : 1;
}

// The sandbox --isolation asks for, probed (the CLI never falls back: it runs the command as
// asked or not at all); with auto the strongest that works here, stated on stderr. nullopt
// (after saying why) when it cannot be had.
std::optional<pagi_exec::Sandbox> make_sandbox(const Options& o) {
  auto settings = o.host;
  settings.sandbox.limits.timeout = std::chrono::milliseconds(o.timeout_ms);
  if (o.isolation != "auto") {
    settings.isolation = pagi_exec::isolation_from_string(o.isolation);
    if (!settings.isolation) {
      std::cerr << "pagi-exec: --isolation must be auto, native, bwrap or cwd, not '" << o.isolation << "'\n";
      return std::nullopt;
    }
    settings.require_isolation = true;
  }
  auto opened = pagi_exec::open_sandbox(settings);
  if (!opened) {
    const auto& error = opened.error();
    std::cerr << "pagi-exec: " << (error.code == pagi_exec::Errc::sandbox_setup ? "isolation " + o.isolation + " unavailable: " : "")
              << error.message() << "\n";
    return std::nullopt;
  }
  if (!settings.isolation) {
    std::cerr << "pagi-exec: isolation " << pagi_exec::to_string(opened->sandbox.isolation()) << " (" << opened->reason
              << ")\n";
  }
  return std::move(opened->sandbox);
}

int run(const Options& o) {
  const auto sandbox = make_sandbox(o);
  if (!sandbox) return 2;
  if (o.host.sandbox.run_as_root && sandbox->isolation() != pagi_exec::Isolation::native) {
    std::cerr << "pagi-exec: WARNING: --run-as-root: the command runs as this process's own uid (root when run "
                 "as root), as the original did\n";
  }
  auto policy = load_policy(o);
  if (!policy) return 2;
  auto executor = pagi_exec::Executor::open({.policy = std::move(policy->policy),
                                             .sandbox = *sandbox,
                                             .catalog = std::move(policy->catalog),
                                             .request_limits = o.host.request_limits});
  if (!executor) {
    std::cerr << "pagi-exec: " << executor.error().message() << "\n";
    return 2;
  }
  const auto outcome = executor->run(to_request(o));
  if (!outcome) {
    std::cerr << "pagi-exec: " << to_string(outcome.error().code) << ": " << outcome.error().message() << "\n";
    return 2;
  }
  for (const auto& line : outcome->out.lines) std::cout << line << "\n";
  for (const auto& line : outcome->err.lines) std::cerr << line << "\n";
  std::cerr << "pagi-exec: " << outcome->execution_id << " "
            << (outcome->decision.allowed ? "" : verdict(outcome->decision)) << outcome->message << " (exit "
            << outcome->exit_code
            << ", isolation " << pagi_exec::to_string(outcome->isolation) << ")\n";
  return outcome->exit_code;
}

struct AuditArgs {
  std::string file;
  std::optional<std::string> twin, job, outcome, since, until;
  bool json = false;
  std::vector<std::filesystem::path> verify_files;  ///< audit verify: oldest first
};

// Control characters from twins (ids, tools) would reach the terminal: show them as '?'.
std::string printable(std::string_view text) {
  std::string out(text);
  for (auto& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return out;
}

// One human-readable line: time, type, id, who, what, and how it ended.
std::string describe(const pagi_exec::AuditEntry& e) {
  if (e.type == "egress") {
    return e.time + "  egress     " + e.execution_id + "  " + printable(e.twin_id) + "  " + printable(e.method) + " " +
           printable(e.host) + ":" + std::to_string(e.port) + (e.address.empty() ? "" : " (" + printable(e.address) + ")") +
           ": " + std::string(e.outcome()) + " (" + printable(e.rule) + "), " + std::to_string(e.bytes_up) + " B up, " +
           std::to_string(e.bytes_down) + " B down";
  }
  const char* type = e.type == "decision" ? "  decision   " : e.type == "execution" ? "  execution  " : "  rejected   ";
  std::string line = e.time + type + e.execution_id + "  " + printable(e.twin_id);
  if (e.authenticated_twin && *e.authenticated_twin != e.twin_id) line += " (authenticated " + printable(*e.authenticated_twin) + ")";
  if (!e.job_id.empty()) line += " job=" + printable(e.job_id);
  line += "  " + printable(e.tool) + ": " + std::string(e.outcome());
  if (e.type == "auth_rejected") return line + " (" + printable(e.reason) + "; rpc " + printable(e.rpc) + ", peer " + printable(e.peer) + ")";
  if (e.type == "decision") return line + " (" + printable(e.rule) + ")";
  if (e.exit_code) line += ", exit " + std::to_string(*e.exit_code);
  if (e.duration_ms) line += ", " + std::to_string(*e.duration_ms) + " ms";
  if (e.record_outcome() != pagi_exec::RecordOutcome::succeeded && !e.message.empty()) {
    line += " (" + printable(e.message) + ")";
  }
  return line;
}

std::optional<std::chrono::system_clock::time_point> audit_time(const std::optional<std::string>& text,
                                                                 const char* flag, bool& ok) {
  if (!text) return std::nullopt;
  auto time = pagi_exec::parse_rfc3339(*text);
  if (!time) {
    std::cerr << "pagi-exec: " << flag << " '" << *text << "' is not an RFC 3339 time (2026-11-29T16:48:36Z) or a date\n";
    ok = false;
  }
  return time;
}

// With one file, the file logrotate or the size rotation made of it (FILE.1) comes first when it
// exists: the chain runs across both.
std::vector<std::filesystem::path> chain_files(std::vector<std::filesystem::path> files) {
  if (files.size() != 1) return files;
  auto rotated = files[0];
  rotated += ".1";
  std::error_code ec;
  if (std::filesystem::is_regular_file(rotated, ec)) files.insert(files.begin(), rotated);
  return files;
}

// Checks the hash chain: exit 0 intact, 1 broken, 2 when the files cannot be read.
int audit_verify(const AuditArgs& a) {
  const auto files = chain_files(a.verify_files);
  const auto report = pagi_exec::verify_audit_chain(files);
  if (!report) {
    std::cerr << "pagi-exec: " << report.error().message() << "\n";
    return 2;
  }
  for (const auto& note : report->notes) std::cout << "note: " << printable(note) << "\n";
  std::string checked;
  for (const auto& file : files) checked += (checked.empty() ? "" : ", ") + file.string();
  if (!report->intact) {
    std::cout << "BROKEN: " << printable(report->problem) << "\n";
    return 1;
  }
  std::cout << "intact: " << report->records << " records in " << checked << " each follow the one before\n"
            << "last record: sha256 " << report->last_hash
            << " (nothing vouches for it yet: keep this value elsewhere to check it later)\n";
  return 0;
}

// Prints the matching records, then the counts (to stderr with --json, so stdout stays JSON Lines).
int audit(const AuditArgs& a) {
  if (a.file.empty()) {
    std::cerr << "pagi-exec: audit: give the audit log file (pagi-exec audit FILE), or verify its chain "
                 "(pagi-exec audit verify FILE...)\n";
    return 2;
  }
  bool ok = true;
  const pagi_exec::AuditFilter filter{.twin = a.twin, .job = a.job, .outcome = a.outcome,
                                      .since = audit_time(a.since, "--since", ok),
                                      .until = audit_time(a.until, "--until", ok)};
  if (!ok) return 2;
  const auto report = pagi_exec::read_audit_log(a.file, filter);
  if (!report) {
    std::cerr << "pagi-exec: " << report.error().message() << "\n";
    return 2;
  }
  for (const auto& e : report->entries) std::cout << (a.json ? e.raw_json : describe(e)) << "\n";
  std::ostream& summary = a.json ? std::cerr : std::cout;
  summary << report->entries.size() << " records of " << report->lines << " lines: " << report->decisions
          << " decisions (" << report->refused << " refused), " << report->executions << " executions ("
          << report->succeeded << " succeeded, " << report->failed << " failed, " << report->timed_out
          << " timed out), " << report->auth_rejected << " rejected credentials\n";
  if (report->torn_lines > 0) summary << "the last line is torn (a write cut short by a crash): skipped\n";
  if (report->bad_lines > 0) summary << report->bad_lines << " lines are not audit records: skipped\n";
  return 0;
}

// The options check and run share: who asks, the policy, what a request may carry, the command.
void add_request_options(CLI::App& sub, Options& o) {
  sub.add_option("--twin", o.twin, "the twin the request acts for")->required();
  sub.add_flag("--safe-mode", o.host.safe_mode, "decide as the server does in safe mode");
  sub.add_flag("--allow-host-network", o.host.allow_host_network,
               "accept a policy that gives twins network = \"host\", as the server does with TOOLS_ALLOW_HOST_NETWORK")
      ->envname("TOOLS_ALLOW_HOST_NETWORK");
  sub.add_option("--policy", o.host.policy_file, "a policy file (TOML, docs/policy.md); default: the seed matrix");
  sub.add_option("--max-args", o.host.request_limits.max_args, "most arguments a request may carry")
      ->envname("TOOLS_MAX_ARGS")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}));
  sub.add_option("--max-request-bytes", o.host.request_limits.max_request_bytes,
                 "most bytes a request may carry (command, args and ids together)")
      ->envname("TOOLS_MAX_REQUEST_BYTES")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1024}, std::uint64_t{1} << 30));
  sub.add_option("command", o.command, "tool or program, then its arguments (use -- before them)")->required();
}

// Where and how run runs the command.
void add_sandbox_options(CLI::App& run, Options& o) {
  run.add_option("--sandbox-dir", o.host.sandbox.root_dir, "workspace root")->default_str(o.host.sandbox.root_dir.string());
  run.add_option("--isolation", o.isolation,
                 "auto (the strongest that works here: native, else bwrap, else cwd), native, bwrap or cwd")
      ->capture_default_str();
  run.add_option("--timeout-ms", o.timeout_ms, "time limit")
      ->capture_default_str()
      ->check(CLI::Range(1LL, static_cast<long long>(pagi_exec::max_timeout.count())));
  run.add_option("--run-as-uid", o.host.sandbox.sandbox_uid, "uid the command runs as when run as root; 0 needs --run-as-root")
      ->envname("TOOLS_RUN_AS_UID")
      ->capture_default_str();
  run.add_option("--run-as-gid", o.host.sandbox.sandbox_gid, "gid the command runs as when run as root; 0 needs --run-as-root")
      ->envname("TOOLS_RUN_AS_GID")
      ->capture_default_str();
  run.add_flag("--run-as-root", o.host.sandbox.run_as_root,
               "cwd and bwrap: run the command as this process's own uid (root when run as root), as the "
               "original did; unsafe")
      ->envname("TOOLS_RUN_AS_ROOT");
}

void add_audit_options(CLI::App& audit_cmd, AuditArgs& a) {
  audit_cmd.add_option("file", a.file, "the audit log (JSON Lines)");
  audit_cmd.add_option("--twin", a.twin, "only this twin (as claimed or authenticated)");
  audit_cmd.add_option("--job", a.job, "only this job id");
  std::vector<std::string> outcome_names;
  for (const auto outcome : pagi_exec::all_record_outcomes) outcome_names.emplace_back(pagi_exec::to_string(outcome));
  audit_cmd.add_option("--outcome", a.outcome, pagi_exec::list_names(pagi_exec::all_record_outcomes, " or "))
      ->check(CLI::IsMember(outcome_names));
  audit_cmd.add_option("--since", a.since, "records at or after this time (RFC 3339 or a date)");
  audit_cmd.add_option("--until", a.until, "records before this time (RFC 3339 or a date)");
  audit_cmd.add_flag("--json", a.json, "print the records as stored (JSON Lines); counts go to stderr");
}

}  // namespace

int main(int argc, char** argv) {
  // Runs are cloned from this small copy of the process (pagi_exec::start_spawn_helper).
  const auto spawner = pagi_exec::spawner_program(pagi_exec_apps::spawner_location());
  if (auto helper = spawner.and_then(pagi_exec::start_spawn_helper); !helper) {
    std::cerr << "pagi-exec: " << helper.error().message() << '\n';
    return 2;
  }
  CLI::App app{"pagi-exec: check or run one request with the pagi-exec library, or read an audit log"};
  app.set_version_flag("--version", pagi_exec::version);
  app.require_subcommand(1);
  Options o;
  auto* check_cmd = app.add_subcommand("check", "decide only: prints allowed/refused and why; exit 0 when allowed, 1 when refused, 2 when the request cannot run as asked (invalid request)");
  add_request_options(*check_cmd, o);
  auto* run_cmd = app.add_subcommand("run", "decide and run; exits with the command's exit code");
  add_request_options(*run_cmd, o);
  add_sandbox_options(*run_cmd, o);
  AuditArgs audit_args;
  auto* audit_cmd = app.add_subcommand("audit", "print the records of an audit log that match, then counts; exit 0, 2 on errors");
  add_audit_options(*audit_cmd, audit_args);
  auto* verify_cmd = audit_cmd->add_subcommand(
      "verify", "check the hash chain of an audit log: every record must follow the one before; names the first "
                "record changed, removed or reordered. Files oldest first; one FILE also checks FILE.1 first when it "
                "exists. Exit 0 intact, 1 broken, 2 on errors");
  verify_cmd->add_option("files", audit_args.verify_files, "the audit log files, oldest first")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (verify_cmd->parsed()) return audit_verify(audit_args);
  if (audit_cmd->parsed()) return audit(audit_args);
  return check_cmd->parsed() ? check(o) : run(o);
}
