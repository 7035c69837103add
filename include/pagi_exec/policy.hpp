// SPDX-License-Identifier: Apache-2.0
// Policy: which twin may run which tool. A pure function of (policy, request).
#pragma once

#include <algorithm>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "pagi_exec/error.hpp"
#include "pagi_exec/program_name.hpp"
#include "pagi_exec/request.hpp"
#include "pagi_exec/paths.hpp"

namespace pagi_exec {

/// The logical tool that hands args[0] to /bin/sh -c.
inline constexpr std::string_view shell_bridge_tool = "command_exec";
/// A grant of every tool that is not refused.
inline constexpr std::string_view grant_all = "*";

/// What one twin may run: exact tool names or "*", and explicit refusals.
struct TwinGrants {
  std::vector<std::string> allow;
  std::vector<std::string> deny;  ///< matched like always_refused: by program name
  bool operator==(const TwinGrants&) const = default;
};

/// Plain data a Policy is made from. Fill it with designated initializers, then Policy::make.
struct PolicySpec {
  std::map<std::string, TwinGrants> twins;
  std::vector<std::string> always_refused;  ///< program names refused for everyone
  bool safe_mode = false;

  /// The seed service's matrix: twin-aegis "*", twin-sentinel file_write/command_exec/
  /// vector_query, twin-trace vector_query; rm, delete, format, shutdown, reboot always refused.
  [[nodiscard]] static PolicySpec seed_default() {
    return PolicySpec{
        .twins = {{"twin-aegis", {.allow = {"*"}}},
                  {"twin-sentinel", {.allow = {"file_write", "command_exec", "vector_query"}}},
                  {"twin-trace", {.allow = {"vector_query"}}}},
        .always_refused = {"rm", "delete", "format", "shutdown", "reboot"},
        .safe_mode = false,
    };
  }
  bool operator==(const PolicySpec&) const = default;
};

/// The verdict on one request: allowed or not, a reason a person can act on, the rule that decided.
struct Decision {
  bool allowed = false;
  std::string reason;
  std::string rule;  ///< e.g. "always_refused[rm]", "twins.twin-aegis.allow[*]", "default_deny"
  bool operator==(const Decision&) const = default;
};

/// A validated, immutable policy. Rules, in order (first match decides):
///  1. no twin_id or no tool: refused;
///  2. the tool's program name (program_name()) is always refused: refused, whatever the twin;
///  3. an unknown twin has no grants: refused (default deny);
///  4. the twin's deny list names the program: refused;
///  5. safe mode refuses the shell bridge (command_exec);
///  6. the twin's allow list names the tool exactly: allowed;
///  7. the allow list holds "*": allowed, except in safe mode, where "*" grants nothing;
///  8. otherwise refused (default deny).
/// Refusals match by program name (so "/bin/rm" is "rm"); grants match the exact tool string
/// (so a grant of "ls" does not grant "/tmp/x/ls"). Copyable and safe to share between threads.
class Policy {
 public:
  /// Validates `spec`: twin names must be safe path components, no empty tool names, no "*" in a
  /// deny or always-refused list. Errc::invalid_config says which entry is wrong.
  [[nodiscard]] static Result<Policy> make(PolicySpec spec) {
    for (const auto& [twin, grants] : spec.twins) {
      if (auto why = why_not_path_component(twin); !why.empty()) {
        return fail(Errc::invalid_config, "twin name '" + twin + "' " + why);
      }
      for (const auto& tool : grants.allow) {
        if (tool.empty()) return fail(Errc::invalid_config, "twins." + twin + ".allow has an empty tool name");
      }
      for (const auto& tool : grants.deny) {
        if (program_name(tool).empty() || tool == grant_all) {
          return fail(Errc::invalid_config, "twins." + twin + ".deny entry '" + tool + "' names no program");
        }
      }
    }
    for (const auto& tool : spec.always_refused) {
      if (program_name(tool).empty() || tool == grant_all) {
        return fail(Errc::invalid_config, "always_refused entry '" + tool + "' names no program");
      }
    }
    return Policy(std::move(spec));
  }

  /// The seed's matrix (PolicySpec::seed_default()), which always validates.
  [[nodiscard]] static Policy seed_default() { return Policy(PolicySpec::seed_default()); }

  /// Decides one request. Pure: the same (policy, request) always gives the same Decision.
  [[nodiscard]] Decision decide(const Request& request) const;

  [[nodiscard]] const PolicySpec& spec() const noexcept { return spec_; }
  [[nodiscard]] bool safe_mode() const noexcept { return spec_.safe_mode; }

  /// The same policy with safe mode switched.
  [[nodiscard]] Policy with_safe_mode(bool on) const {
    auto spec = spec_;
    spec.safe_mode = on;
    return Policy(std::move(spec));
  }

  bool operator==(const Policy&) const = default;

 private:
  explicit Policy(PolicySpec spec) : spec_(std::move(spec)) {}
  PolicySpec spec_;
};

namespace detail {
/// The entry of `names` that names the same program as `tool`, or nullptr.
[[nodiscard]] inline const std::string* find_program(const std::vector<std::string>& names,
                                                     std::string_view tool) noexcept {
  const auto program = program_name(tool);
  const auto it = std::find_if(names.begin(), names.end(),
                               [&](const std::string& n) { return program_name(n) == program; });
  return it == names.end() ? nullptr : &*it;
}

inline Decision refuse(std::string reason, std::string rule) {
  return Decision{.allowed = false, .reason = std::move(reason), .rule = std::move(rule)};
}
inline Decision allow(std::string reason, std::string rule) {
  return Decision{.allowed = true, .reason = std::move(reason), .rule = std::move(rule)};
}
}  // namespace detail

inline Decision Policy::decide(const Request& request) const {
  using detail::refuse;
  const std::string& twin = request.twin_id;
  const std::string& tool = request.tool;
  if (twin.empty()) {
    return refuse("no twin_id given: every request must name the twin it acts for", "default_deny");
  }
  if (program_name(tool).empty()) {
    return refuse("no command given: set command to a tool or program name", "invalid_command");
  }
  const auto program = std::string(program_name(tool));
  if (const auto* hit = detail::find_program(spec_.always_refused, tool)) {
    const auto spelled = tool == program ? "'" + tool + "'" : "'" + tool + "' (program '" + program + "')";
    return refuse("command " + spelled + " is always refused", "always_refused[" + *hit + "]");
  }
  const auto found = spec_.twins.find(twin);
  if (found == spec_.twins.end()) {
    return refuse("twin '" + twin + "' is not known to the policy and may run nothing", "default_deny");
  }
  const TwinGrants& grants = found->second;
  const std::string prefix = "twins." + twin;
  if (const auto* hit = detail::find_program(grants.deny, tool)) {
    return refuse("twin '" + twin + "' is refused '" + program + "'", prefix + ".deny[" + *hit + "]");
  }
  if (spec_.safe_mode && tool == shell_bridge_tool) {
    return refuse("safe mode refuses the shell bridge '" + tool + "'", "safe_mode");
  }
  const auto grants_tool = [&](std::string_view name) {
    return std::find(grants.allow.begin(), grants.allow.end(), name) != grants.allow.end();
  };
  if (grants_tool(tool)) {
    return detail::allow("twin '" + twin + "' is granted '" + tool + "'", prefix + ".allow[" + tool + "]");
  }
  if (grants_tool(grant_all)) {
    if (spec_.safe_mode) {
      return refuse("safe mode: twin '" + twin + "' holds only '*', which grants nothing in safe mode; "
                    "grant '" + tool + "' by name",
                    "safe_mode");
    }
    return detail::allow("twin '" + twin + "' is granted every tool that is not refused", prefix + ".allow[*]");
  }
  return refuse("twin '" + twin + "' is not granted '" + tool + "'", "default_deny");
}

}  // namespace pagi_exec
