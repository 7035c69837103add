// SPDX-License-Identifier: Apache-2.0
// Fuzz target: a request's normalisation (Command::make) and the policy's judgement of it (judge).
// Input: a first line of flags, then twin_id, tool, job_id, and one argument a line; any bytes
// (NUL, invalid UTF-8, huge lines). Flags: 's' safe mode, 'l' small request limits, 'f' the policy
// file below with its tool catalog, 'm' a metadata entry as large as the input.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <pagi_exec/pagi_exec.hpp>
#include <pagi_exec/policy_file.hpp>

#include "fuzz_input.hpp"

namespace {

// A policy with every kind of rule: catalog tools, a deny list, limits, safe-mode caps.
constexpr std::string_view policy_text = R"(
always_refused = ["rm", "shutdown"]
[safe_mode_limits]
timeout_ms = 5000
[twins.twin-aegis]
allow = ["*"]
deny = ["curl"]
network = "egress"
allow_domains = ["pypi.org", "*.pythonhosted.org"]
[twins.twin-sentinel]
allow = ["file_write", "command_exec", "git_status", "/bin/echo"]
[twins.twin-sentinel.limits]
timeout_ms = 1000
output_lines = 10
[tools.git_status]
program = "/usr/bin/git"
args = ["status", "--short"]
)";

const pagi_exec::PolicyFile& file_policy() {
  static const auto file = [] {
    auto parsed = pagi_exec::parse_policy(policy_text, "request_fuzz");
    fuzz::check(parsed.has_value(), "the target's own policy text parses");
    return *parsed;
  }();
  return file;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto fields = fuzz::lines(fuzz::as_text(data, size));
  const std::string_view flags = fields[0];
  const auto field = [&](std::size_t i) { return i < fields.size() ? fields[i] : std::string(); };

  pagi_exec::Request request{.tool = field(2), .twin_id = field(1), .job_id = field(3)};
  for (std::size_t i = 4; i < fields.size(); ++i) request.args.push_back(fields[i]);
  if (flags.find('m') != std::string_view::npos) request.metadata[field(1)] = std::string(size, 'x');

  const bool from_file = flags.find('f') != std::string_view::npos;
  auto policy = from_file ? file_policy().policy : pagi_exec::Policy::seed_default();
  policy = policy.with_safe_mode(flags.find('s') != std::string_view::npos);
  const auto catalog = from_file ? file_policy().catalog : pagi_exec::ToolCatalog::seed_default();
  const auto limits = flags.find('l') != std::string_view::npos
                          ? pagi_exec::RequestLimits{.max_args = 4, .max_request_bytes = 256}
                          : pagi_exec::RequestLimits{};

  const auto command = pagi_exec::Command::make(request, catalog, limits);
  const auto decision = pagi_exec::judge(policy, catalog, limits, request);
  fuzz::check(decision == pagi_exec::judge(policy, command, request), "judging is the same from a made Command");
  fuzz::check(decision == pagi_exec::judge(policy, catalog, limits, request), "judging is pure");
  fuzz::check(!decision.reason.empty() && !decision.rule.empty(), "every decision has a reason and a rule");

  if (!command) {
    fuzz::check(!decision.allowed && decision.is_invalid_request(), "a request Command::make refuses is not allowed");
    return 0;
  }
  for (const auto& arg : command->argv()) {
    fuzz::check(arg.find('\0') == std::string::npos, "no argv string holds a NUL byte");
  }
  if (decision.allowed) {
    fuzz::check(!request.twin_id.empty() && !request.tool.empty(), "an allowed request names a twin and a tool");
    fuzz::check(!(policy.safe_mode() && command->kind() == pagi_exec::ToolKind::shell_bridge),
                "safe mode never allows the shell bridge");
    fuzz::check(!(policy.safe_mode() && decision.network != pagi_exec::NetworkAccess::none), "safe mode never grants the network");
    const auto& program = command->argv().empty() ? request.tool : command->argv()[0];
    for (const auto& refused : policy.spec().always_refused) {
      fuzz::check(pagi_exec::program_name(program) != refused, "an always-refused program is never allowed");
    }
  }
  return 0;
}
