// SPDX-License-Identifier: Apache-2.0
// Policy::make and Policy::decide: validation once, then the eight rules of policy.hpp in order.
// Included by policy.hpp.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pagi_exec/command.hpp"
#include "pagi_exec/paths.hpp"
#include "pagi_exec/policy.hpp"
#include "pagi_exec/program_name.hpp"
#include "pagi_exec/shell_scan.hpp"

namespace pagi_exec::detail::decide {

// The entry of `names` that names the same program as `tool`, or nullptr.
inline const std::string* find_program(const std::vector<std::string>& names, std::string_view tool) noexcept {
  const auto program = program_name(tool);
  const auto it = std::find_if(names.begin(), names.end(),
                               [&](const std::string& n) { return program_name(n) == program; });
  return it == names.end() ? nullptr : &*it;
}

// Where a refusal list entry matched: the tool as asked, the program it maps to (a catalog
// tool), or a program named inside its arguments (a shell line, `sudo rm`, `find -exec rm`).
enum class Where : std::uint8_t { tool, program, line };

struct Hit {
  const std::string* entry = nullptr;
  std::string_view what;
  Where where = Where::tool;
};

inline Hit find_refused(const std::vector<std::string>& names, const Command& command, const ShellScan& scan) {
  if (const auto* entry = find_program(names, command.tool())) return {entry, command.tool(), Where::tool};
  if (command.kind() == ToolKind::program && !command.argv().empty()) {
    if (const auto* entry = find_program(names, command.argv().front())) {
      return {entry, command.argv().front(), Where::program};
    }
  }
  for (const auto& word : scan.command_words) {
    if (const auto* entry = find_program(names, word)) return {entry, word, Where::line};
  }
  return {};
}

// `text` quoted for a reason, cut to a readable length (a tool may be a megabyte long).
inline std::string in_quotes(std::string_view text) {
  constexpr std::size_t max_shown = 200;
  if (text.size() <= max_shown) return "'" + std::string(text) + "'";
  return "'" + std::string(text.substr(0, max_shown)) + "...' (" + std::to_string(text.size()) + " bytes)";
}

// "'rm'" or "'/bin/rm' (program 'rm')".
inline std::string spelled(std::string_view what) {
  const auto program = program_name(what);
  std::string s = in_quotes(what);
  if (program != what) s += " (program " + in_quotes(program) + ")";
  return s;
}

// What runs the refused program, for a reason: "the command_exec line", "command 'cleanup'".
inline std::string runner_of(const Command& command, Where where) {
  if (where == Where::program) return "command " + in_quotes(command.tool());
  if (command.kind() == ToolKind::shell_bridge) return "the " + std::string(shell_bridge_tool) + " line";
  return "the arguments of command " + in_quotes(command.tool());
}

inline Decision refuse(std::string reason, std::string rule) {
  return Decision{.allowed = false, .reason = std::move(reason), .rule = std::move(rule)};
}

// Why a limit is not acceptable, or empty.
inline std::string why_not_limits(const TwinLimits& limits, const std::string& where) {
  if (limits.timeout && limits.timeout->count() <= 0) return where + ".timeout must be positive";
  const std::pair<const std::optional<std::uint64_t>*, const char*> counts[] = {
      {&limits.memory_bytes, "memory_bytes"},
      {&limits.max_processes, "max_processes"},
      {&limits.output_bytes, "output_bytes"},
      {&limits.output_lines, "output_lines"},
      {&limits.max_running, "max_running"},
      {&limits.workspace_bytes, "workspace_bytes"},
  };
  for (const auto& [value, name] : counts) {
    if (*value && **value == 0) return where + "." + name + " must be positive (leave it unset for no limit)";
  }
  return {};
}

// Why a twin's network grant is not acceptable, or empty: domains belong to egress twins only,
// and an egress twin must name at least one (it would otherwise reach nothing: that is "none").
inline std::string why_not_network(const TwinGrants& grants, const std::string& where) {
  if (grants.network == NetworkAccess::egress) {
    if (grants.allow_domains.empty()) {
      return where + ": network = \"egress\" needs allow_domains, the domains its runs may reach "
                     "(e.g. allow_domains = [\"pypi.org\", \"*.pythonhosted.org\"]); for no network write network = \"none\"";
    }
    return {};
  }
  if (!grants.allow_domains.empty() || !grants.deny_domains.empty()) {
    return where + ": allow_domains and deny_domains apply only with network = \"egress\" (network is \"" +
           std::string(to_string(grants.network)) + "\")";
  }
  return {};
}

inline std::string why_not_refusal_list(const std::vector<std::string>& names, const std::string& where) {
  for (const auto& tool : names) {
    if (program_name(tool).empty() || tool == grant_all) return where + " entry '" + tool + "' names no program";
  }
  return {};
}

}  // namespace pagi_exec::detail::decide

namespace pagi_exec {

inline Result<Policy> Policy::make(PolicySpec spec) {
  using namespace detail::decide;
  for (const auto& [twin, grants] : spec.twins) {
    if (auto why = why_not_path_component(twin); !why.empty()) {
      return fail(Errc::invalid_config, "twin name '" + twin + "' " + why);
    }
    const std::string where = "twins." + twin;
    for (const auto& tool : grants.allow) {
      if (tool.empty()) return fail(Errc::invalid_config, where + ".allow has an empty tool name");
    }
    for (const auto& why : {why_not_refusal_list(grants.deny, where + ".deny"),
                            why_not_limits(grants.limits, where + ".limits"),
                            why_not_network(grants, where)}) {
      if (!why.empty()) return fail(Errc::invalid_config, why);
    }
  }
  for (const auto& why : {why_not_refusal_list(spec.always_refused, "always_refused"),
                          why_not_limits(spec.safe_mode_limits, "safe_mode_limits")}) {
    if (!why.empty()) return fail(Errc::invalid_config, why);
  }
  return Policy(std::move(spec));
}

// Rules 2-5 of policy.hpp: the refusals that come before any grant is looked at.
inline std::optional<Decision> Policy::refusal(const Command& command, const ShellScan& scan) const {
  using namespace detail::decide;
  const std::string& twin = command.twin_id();
  if (const auto hit = find_refused(spec_.always_refused, command, scan); hit.entry != nullptr) {
    const auto reason = hit.where == Where::tool ? "command " + spelled(hit.what) + " is always refused"
                                                 : runner_of(command, hit.where) + " runs " + spelled(hit.what) +
                                                       ", which is always refused";
    return refuse(reason, "always_refused[" + *hit.entry + "]");
  }
  const auto found = spec_.twins.find(twin);
  if (found == spec_.twins.end()) {
    return refuse("twin " + in_quotes(twin) + " is not known to the policy and may run nothing", "default_deny");
  }
  if (const auto hit = find_refused(found->second.deny, command, scan); hit.entry != nullptr) {
    const auto by = hit.where == Where::tool ? std::string() : ", which " + runner_of(command, hit.where) + " runs";
    return refuse("twin '" + twin + "' is refused " + in_quotes(program_name(hit.what)) + by,
                  "twins." + twin + ".deny[" + *hit.entry + "]");
  }
  if (spec_.safe_mode && command.kind() == ToolKind::shell_bridge) {
    return refuse("safe mode refuses the shell bridge '" + command.tool() + "'", "safe_mode");
  }
  return std::nullopt;
}

inline Decision Policy::decide(const Request& request) const {
  auto command = Command::make(request, ToolCatalog::seed_default());
  if (!command) return Decision::invalid_request(command.error().message());
  return decide(*command);
}

inline Decision Policy::decide(const Command& command) const {
  using namespace detail::decide;
  const std::string& twin = command.twin_id();
  const std::string& tool = command.tool();
  if (twin.empty()) {
    return refuse("no twin_id given: every request must name the twin it acts for", "default_deny");
  }
  // A call without a command is the caller's mistake, not the policy's refusal. "/" is a
  // command (a folder, which cannot be executed: 126, as the original answers).
  if (tool.empty()) return Decision::invalid_request("no command given: set command to a tool or program name");
  const ShellScan scan = command.kind() == ToolKind::shell_bridge ? scan_shell(command.shell_line())
                         : command.kind() == ToolKind::program   ? scan_argv(command.argv())
                                                                  : ShellScan{};
  auto decision = [&]() -> Decision {
    if (auto refused = refusal(command, scan)) return std::move(*refused);
    static const TwinGrants no_grants;  // refusal() has refused unknown twins already
    const auto found = spec_.twins.find(twin);
    const TwinGrants& grants = found == spec_.twins.end() ? no_grants : found->second;
    const std::string prefix = "twins." + twin;
    const auto grants_tool = [&](std::string_view name) {
      return std::find(grants.allow.begin(), grants.allow.end(), name) != grants.allow.end();
    };
    Decision allowed{.allowed = true,
                     .limits = spec_.safe_mode ? grants.limits.capped_by(spec_.safe_mode_limits) : grants.limits};
    if (!spec_.safe_mode) {  // safe mode never grants a network
      allowed.network = grants.network;
      if (grants.network == NetworkAccess::egress) {
        allowed.allow_domains = grants.allow_domains;
        allowed.deny_domains = grants.deny_domains;
      }
    }
    if (grants_tool(tool)) {
      allowed.reason = "twin '" + twin + "' is granted '" + tool + "'";
      allowed.rule = prefix + ".allow[" + tool + "]";
      return allowed;
    }
    if (!grants_tool(grant_all)) return refuse("twin '" + twin + "' is not granted " + in_quotes(tool), "default_deny");
    if (spec_.safe_mode) {
      return refuse("safe mode: twin '" + twin + "' holds only '*', which grants nothing in safe mode; "
                    "grant " + in_quotes(tool) + " by name",
                    "safe_mode");
    }
    allowed.reason = "twin '" + twin + "' is granted every tool that is not refused";
    allowed.rule = prefix + ".allow[*]";
    return allowed;
  }();
  for (const auto& what : scan.unjudgeable) decision.notes.push_back("unjudgeable: " + what);
  return decision;
}

inline Decision judge(const Policy& policy, const Result<Command>& command, const Request& request) {
  if (!command) return Decision::invalid_request(command.error().message());
  auto decision = policy.decide(*command);
  if (!decision.allowed) return decision;
  if (auto why = why_not_call(*command, request); !why.empty()) return Decision::invalid_request(std::move(why));
  return decision;
}

inline Decision judge(const Policy& policy, const ToolCatalog& catalog, const RequestLimits& limits,
                      const Request& request) {
  return judge(policy, Command::make(request, catalog, limits), request);
}

}  // namespace pagi_exec
