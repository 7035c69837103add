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
#include <vector>

#include <pagi_exec/pagi_exec.hpp>
#include <pagi_exec/policy_file.hpp>

namespace {

struct Options {
  std::string twin;
  std::vector<std::string> command;  // tool, then its args
  bool safe_mode = false;
  std::string sandbox_dir = "/tmp/pagi-sandbox";
  std::string isolation = "auto";
  long long timeout_ms = 10'000;
  std::string policy_file;  // empty: the embedded seed matrix
  std::uint32_t run_as_uid = 65534;
  std::uint32_t run_as_gid = 65534;
  bool run_as_root = false;
  pagi_exec::RequestLimits request_limits;  // as the server's TOOLS_MAX_ARGS / TOOLS_MAX_REQUEST_BYTES
};

// The policy file (or the seed matrix), with --safe-mode forcing safe mode on; exit status 2
// and the file's line and column on a bad file.
std::optional<pagi_exec::PolicyFile> load_policy(const Options& o) {
  pagi_exec::PolicyFile file{pagi_exec::Policy::seed_default(), pagi_exec::ToolCatalog::seed_default()};
  if (!o.policy_file.empty()) {
    auto loaded = pagi_exec::load_policy_file(o.policy_file);
    if (!loaded) {
      std::cerr << "pagi-exec: " << loaded.error().message() << "\n";
      return std::nullopt;
    }
    file = std::move(*loaded);
  }
  if (o.safe_mode) file.policy = file.policy.with_safe_mode(true);
  return file;
}

pagi_exec::Request to_request(const Options& o) {
  pagi_exec::Request request{.tool = o.command.empty() ? std::string() : o.command.front(), .twin_id = o.twin};
  if (!o.command.empty()) request.args.assign(o.command.begin() + 1, o.command.end());
  return request;
}

int check(const Options& o) {
  const auto policy = load_policy(o);
  if (!policy) return 2;
  // The same judgement as a run (catalog, NUL bytes, sizes, the tool's arguments).
  const auto decision = pagi_exec::judge(policy->policy, policy->catalog, o.request_limits, to_request(o));
  std::cout << (decision.allowed ? "allowed: " : "refused: ") << decision.reason << " (rule " << decision.rule
            << ", policy " << policy->policy.revision() << ")\n";
  for (const auto& note : decision.notes) std::cout << "note: " << note << "\n";
  return decision.allowed ? 0 : 1;
}

// The sandbox --isolation asks for, probed; with auto the strongest that works here, stated on
// stderr. nullopt (after saying why) when it cannot be had.
std::optional<pagi_exec::Sandbox> make_sandbox(const Options& o) {
  const pagi_exec::SandboxSpec spec{.root_dir = o.sandbox_dir,
                                    .limits = {.timeout = std::chrono::milliseconds(o.timeout_ms)},
                                    .sandbox_uid = o.run_as_uid,
                                    .sandbox_gid = o.run_as_gid,
                                    .run_as_root = o.run_as_root};
  if (o.isolation == "auto") {
    auto choice = pagi_exec::choose_isolation(spec);
    if (!choice) {
      std::cerr << "pagi-exec: " << choice.error().message() << "\n";
      return std::nullopt;
    }
    std::cerr << "pagi-exec: isolation " << pagi_exec::to_string(choice->sandbox.isolation()) << " (auto: "
              << choice->reason << ")\n";
    return std::move(choice->sandbox);
  }
  const auto isolation = pagi_exec::isolation_from_string(o.isolation);
  if (!isolation) {
    std::cerr << "pagi-exec: --isolation must be auto, native, bwrap or cwd, not '" << o.isolation << "'\n";
    return std::nullopt;
  }
  auto with_kind = spec;
  with_kind.isolation = *isolation;
  auto sandbox = pagi_exec::Sandbox::make(with_kind);
  if (!sandbox) {
    std::cerr << "pagi-exec: " << sandbox.error().message() << "\n";
    return std::nullopt;
  }
  if (auto works = pagi_exec::check_isolation(*sandbox); !works) {
    std::cerr << "pagi-exec: isolation " << o.isolation << " unavailable: " << works.error().message() << "\n";
    return std::nullopt;
  }
  return *sandbox;
}

int run(const Options& o) {
  const auto sandbox = make_sandbox(o);
  if (!sandbox) return 2;
  if (o.run_as_root && sandbox->isolation() != pagi_exec::Isolation::native) {
    std::cerr << "pagi-exec: WARNING: --run-as-root: the command runs as this process's own uid (root when run "
                 "as root), as the original did\n";
  }
  auto policy = load_policy(o);
  if (!policy) return 2;
  auto executor = pagi_exec::Executor::make({.policy = std::move(policy->policy),
                                             .sandbox = *sandbox,
                                             .catalog = std::move(policy->catalog),
                                             .request_limits = o.request_limits});
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
            << (outcome->decision.allowed ? "" : "refused: ") << outcome->message << " (exit " << outcome->exit_code
            << ", isolation " << pagi_exec::to_string(outcome->isolation) << ")\n";
  return outcome->exit_code;
}

struct AuditArgs {
  std::string file;
  std::optional<std::string> twin, job, outcome, since, until;
  bool json = false;
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
  const char* type = e.type == "decision" ? "  decision   " : e.type == "execution" ? "  execution  " : "  rejected   ";
  std::string line = e.time + type + e.execution_id + "  " + printable(e.twin_id);
  if (e.authenticated_twin && *e.authenticated_twin != e.twin_id) line += " (authenticated " + printable(*e.authenticated_twin) + ")";
  if (!e.job_id.empty()) line += " job=" + printable(e.job_id);
  line += "  " + printable(e.tool) + ": " + std::string(e.outcome());
  if (e.type == "auth_rejected") return line + " (" + printable(e.reason) + "; rpc " + printable(e.rpc) + ", peer " + printable(e.peer) + ")";
  if (e.type == "decision") return line + " (" + printable(e.rule) + ")";
  if (e.exit_code) line += ", exit " + std::to_string(*e.exit_code);
  if (e.duration_ms) line += ", " + std::to_string(*e.duration_ms) + " ms";
  if (e.outcome() != "succeeded" && !e.message.empty()) line += " (" + printable(e.message) + ")";
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

// Prints the matching records, then the counts (to stderr with --json, so stdout stays JSON Lines).
int audit(const AuditArgs& a) {
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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pagi-exec: check or run one request with the pagi-exec library, or read an audit log"};
  app.require_subcommand(1);
  Options o;
  auto add_common = [&](CLI::App* sub) {
    sub->add_option("--twin", o.twin, "the twin the request acts for")->required();
    sub->add_flag("--safe-mode", o.safe_mode, "decide as the server does in safe mode");
    sub->add_option("--policy", o.policy_file, "a policy file (TOML, docs/policy.md); default: the seed matrix");
    sub->add_option("--max-args", o.request_limits.max_args, "most arguments a request may carry")
        ->envname("TOOLS_MAX_ARGS")
        ->capture_default_str()
        ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}));
    sub->add_option("--max-request-bytes", o.request_limits.max_request_bytes,
                    "most bytes a request may carry (command, args and ids together)")
        ->envname("TOOLS_MAX_REQUEST_BYTES")
        ->capture_default_str()
        ->check(CLI::Range(std::uint64_t{1024}, std::uint64_t{1} << 30));
    sub->add_option("command", o.command, "tool or program, then its arguments (use -- before them)")->required();
  };
  auto* check_cmd = app.add_subcommand("check", "decide only: prints allowed/refused and why; exit 0 when allowed, 1 when refused");
  add_common(check_cmd);
  auto* run_cmd = app.add_subcommand("run", "decide and run; exits with the command's exit code");
  add_common(run_cmd);
  run_cmd->add_option("--sandbox-dir", o.sandbox_dir, "workspace root")->capture_default_str();
  run_cmd->add_option("--isolation", o.isolation,
                      "auto (the strongest that works here: native, else bwrap, else cwd), native, bwrap or cwd")
      ->capture_default_str();
  run_cmd->add_option("--timeout-ms", o.timeout_ms, "time limit")->capture_default_str()->check(CLI::Range(1LL, 86'400'000LL));
  run_cmd->add_option("--run-as-uid", o.run_as_uid, "uid the command runs as when run as root; 0 needs --run-as-root")
      ->envname("TOOLS_RUN_AS_UID")->capture_default_str();
  run_cmd->add_option("--run-as-gid", o.run_as_gid, "gid the command runs as when run as root; 0 needs --run-as-root")
      ->envname("TOOLS_RUN_AS_GID")->capture_default_str();
  run_cmd->add_flag("--run-as-root", o.run_as_root,
                    "cwd and bwrap: run the command as this process's own uid (root when run as root), as the "
                    "original did; unsafe")
      ->envname("TOOLS_RUN_AS_ROOT");
  AuditArgs audit_args;
  auto* audit_cmd = app.add_subcommand("audit", "print the records of an audit log that match, then counts; exit 0, 2 on errors");
  audit_cmd->add_option("file", audit_args.file, "the audit log (JSON Lines)")->required();
  audit_cmd->add_option("--twin", audit_args.twin, "only this twin (as claimed or authenticated)");
  audit_cmd->add_option("--job", audit_args.job, "only this job id");
  audit_cmd->add_option("--outcome", audit_args.outcome, "allowed, refused, succeeded, failed, timed_out or auth_rejected")
      ->check(CLI::IsMember({"allowed", "refused", "succeeded", "failed", "timed_out", "auth_rejected"}));
  audit_cmd->add_option("--since", audit_args.since, "records at or after this time (RFC 3339 or a date)");
  audit_cmd->add_option("--until", audit_args.until, "records before this time (RFC 3339 or a date)");
  audit_cmd->add_flag("--json", audit_args.json, "print the records as stored (JSON Lines); counts go to stderr");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (audit_cmd->parsed()) return audit(audit_args);
  return check_cmd->parsed() ? check(o) : run(o);
}
