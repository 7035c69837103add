// SPDX-License-Identifier: Apache-2.0
// pagi-exec: decide (check) or decide and run (run) one request with the library, no gRPC.
// It is also the smallest example of a host program linking libpagi_exec.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <pagi_exec/pagi_exec.hpp>

namespace {

struct Options {
  std::string twin;
  std::vector<std::string> command;  // tool, then its args
  bool safe_mode = false;
  std::string sandbox_dir = "/tmp/pagi-sandbox";
  std::string isolation = "cwd";
  long long timeout_ms = 10'000;
};

pagi_exec::Request to_request(const Options& o) {
  pagi_exec::Request request{.tool = o.command.empty() ? std::string() : o.command.front(), .twin_id = o.twin};
  if (!o.command.empty()) request.args.assign(o.command.begin() + 1, o.command.end());
  return request;
}

int check(const Options& o) {
  const auto policy = pagi_exec::Policy::seed_default().with_safe_mode(o.safe_mode);
  const auto decision = policy.decide(to_request(o));
  std::cout << (decision.allowed ? "allowed: " : "refused: ") << decision.reason << " (rule " << decision.rule << ")\n";
  return decision.allowed ? 0 : 1;
}

int run(const Options& o) {
  const auto isolation = pagi_exec::isolation_from_string(o.isolation);
  if (!isolation) {
    std::cerr << "pagi-exec: --isolation must be cwd, bwrap or native, not '" << o.isolation << "'\n";
    return 2;
  }
  auto sandbox = pagi_exec::Sandbox::make({.root_dir = o.sandbox_dir, .isolation = *isolation,
                                           .limits = {.timeout = std::chrono::milliseconds(o.timeout_ms)}});
  if (!sandbox) {
    std::cerr << "pagi-exec: " << sandbox.error().message() << "\n";
    return 2;
  }
  if (auto works = pagi_exec::check_isolation(*sandbox); !works) {
    std::cerr << "pagi-exec: isolation " << o.isolation << " unavailable: " << works.error().message() << "\n";
    return 2;
  }
  auto executor = pagi_exec::Executor::make(
      {.policy = pagi_exec::Policy::seed_default().with_safe_mode(o.safe_mode), .sandbox = *sandbox});
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
            << ")\n";
  return outcome->exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pagi-exec: check or run one request with the pagi-exec library (default policy)"};
  app.require_subcommand(1);
  Options o;
  auto add_common = [&](CLI::App* sub) {
    sub->add_option("--twin", o.twin, "the twin the request acts for")->required();
    sub->add_flag("--safe-mode", o.safe_mode, "decide as the server does in safe mode");
    sub->add_option("command", o.command, "tool or program, then its arguments (use -- before them)")->required();
  };
  auto* check_cmd = app.add_subcommand("check", "decide only: prints allowed/refused and why; exit 0 when allowed, 1 when refused");
  add_common(check_cmd);
  auto* run_cmd = app.add_subcommand("run", "decide and run; exits with the command's exit code");
  add_common(run_cmd);
  run_cmd->add_option("--sandbox-dir", o.sandbox_dir, "workspace root")->capture_default_str();
  run_cmd->add_option("--isolation", o.isolation, "cwd, bwrap or native")->capture_default_str();
  run_cmd->add_option("--timeout-ms", o.timeout_ms, "time limit")->capture_default_str()->check(CLI::Range(1LL, 86'400'000LL));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return check_cmd->parsed() ? check(o) : run(o);
}
