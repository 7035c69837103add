// SPDX-License-Identifier: Apache-2.0
// Policy: which twin may run which tool, with which limits. A pure function of (policy, request).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pagi_exec/command.hpp"
#include "pagi_exec/error.hpp"
#include "pagi_exec/paths.hpp"
#include "pagi_exec/program_name.hpp"
#include "pagi_exec/request.hpp"
#include "pagi_exec/shell_scan.hpp"

namespace pagi_exec {

/// Decision::rule of a request that cannot run as asked: refused before the policy could judge it
/// (Command::make failed: a NUL byte, too many args or bytes), or allowed by the policy but with
/// arguments its tool cannot take (why_not_call: command_exec without a line, file_write without
/// a path and content). Not a policy refusal: it is answered as a usage error (exit_usage).
inline constexpr std::string_view invalid_request_rule = "invalid_request";
/// A grant of every tool that is not refused.
inline constexpr std::string_view grant_all = "*";
/// PolicySpec::revision of a policy that was not loaded from a file.
inline constexpr std::string_view builtin_revision = "builtin";

namespace detail {
/// The lower of two optional limits; an unset one does not bound.
template <class T>
[[nodiscard]] constexpr std::optional<T> lower(const std::optional<T>& a, const std::optional<T>& b) noexcept {
  if (!a) return b;
  if (!b) return a;
  return std::min(*a, *b);
}
}  // namespace detail

/// Resource limits of one twin's executions. Unset means "nothing from the policy": the
/// sandbox's own limits still apply. Set values are positive (Policy::make checks).
struct TwinLimits {
  std::optional<std::chrono::milliseconds> timeout{};  ///< wall-clock time of one execution
  std::optional<std::uint64_t> memory_bytes{};         ///< memory of the process tree
  std::optional<std::uint64_t> max_processes{};        ///< processes/threads of the tree at once
  std::optional<std::uint64_t> output_bytes{};         ///< bytes kept per output stream
  std::optional<std::uint64_t> output_lines{};         ///< lines kept per output stream
  /// Executions of this twin running at once; a host's own per-twin limit still applies (the
  /// lower of the two holds: see Admission::admit).
  std::optional<std::uint64_t> max_running{};
  std::optional<std::uint64_t> workspace_bytes{};      ///< quota of the twin's workspace (only lowers the server's)

  /// These limits with each field lowered to `cap`'s where `cap` sets it; a set cap also bounds
  /// an unset limit (unset here, 5 s in `cap`: 5 s). Thread-safe.
  [[nodiscard]] constexpr TwinLimits capped_by(const TwinLimits& cap) const noexcept {
    return TwinLimits{.timeout = detail::lower(timeout, cap.timeout),
                      .memory_bytes = detail::lower(memory_bytes, cap.memory_bytes),
                      .max_processes = detail::lower(max_processes, cap.max_processes),
                      .output_bytes = detail::lower(output_bytes, cap.output_bytes),
                      .output_lines = detail::lower(output_lines, cap.output_lines),
                      .max_running = detail::lower(max_running, cap.max_running),
                      .workspace_bytes = detail::lower(workspace_bytes, cap.workspace_bytes)};
  }
  bool operator==(const TwinLimits&) const = default;
};

/// What one twin may run: exact tool names or "*", explicit refusals, limits and network.
struct TwinGrants {
  std::vector<std::string> allow{};
  std::vector<std::string> deny{};  ///< matched like always_refused: by program name
  TwinLimits limits{};              ///< applied to every execution of this twin
  bool network = false;           ///< may reach the network (never in safe mode)
  bool operator==(const TwinGrants&) const = default;
};

/// Plain data a Policy is made from. Fill it with designated initializers, then Policy::make,
/// or load it from a file with parse_policy (policy_file.hpp).
struct PolicySpec {
  std::map<std::string, TwinGrants> twins{};
  std::vector<std::string> always_refused{};  ///< program names refused for everyone
  bool safe_mode = false;
  TwinLimits safe_mode_limits{};  ///< in safe mode, every twin's limits are capped by these
  /// Which policy this is: a short hash of the file it was loaded from, or "builtin".
  std::string revision{builtin_revision};

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

/// The verdict on one request: allowed or not, a reason a person can act on, the rule that
/// decided, and for an allowed request what it runs with.
struct Decision {
  bool allowed = false;
  std::string reason{};
  std::string rule{};  ///< e.g. "always_refused[rm]", "twins.twin-aegis.allow[*]", "default_deny"
  /// Allowed: the twin's limits (capped by safe_mode_limits in safe mode). Refused: unset.
  TwinLimits limits{};
  bool network = false;  ///< allowed and the twin has network; never true in safe mode
  /// What the decision could not see, e.g. "unjudgeable: command substitution: $(date)".
  std::vector<std::string> notes{};

  /// The request cannot run as asked (rule invalid_request_rule): a mistake in the call, which
  /// the caller can correct, not a refusal by the policy.
  [[nodiscard]] static Decision invalid_request(std::string reason) {
    return Decision{.allowed = false, .reason = std::move(reason), .rule = std::string(invalid_request_rule)};
  }
  /// True for a Decision made by invalid_request().
  [[nodiscard]] bool is_invalid_request() const noexcept { return !allowed && rule == invalid_request_rule; }

  bool operator==(const Decision&) const = default;
};

/// A validated, immutable policy. Default deny. Rules, in order (first match decides):
///  1. no twin_id: refused; no tool: Decision::invalid_request;
///  2. the tool's program name (program_name()), the program a catalog tool maps to, or the program
///     name of any command word its arguments run (for the shell bridge, of args[0] by scan_shell();
///     for a program, what `sh -c LINE`, `sudo X`, `find -exec X` run, by scan_argv()) is always
///     refused: refused, whatever the twin;
///  3. an unknown twin has no grants: refused;
///  4. the twin's deny list names one of those programs: refused;
///  5. safe mode refuses the shell bridge (command_exec);
///  6. the twin's allow list names the tool exactly: allowed;
///  7. the allow list holds "*": allowed, except in safe mode, where "*" grants nothing;
///  8. otherwise refused.
/// Refusals match by program name (so "/bin/rm" is "rm"); grants match the exact tool string
/// (so a grant of "ls" does not grant "/tmp/x/ls"). What the shell scanner cannot judge
/// (command substitution, eval, interpreters, variables in command position...) is listed in
/// Decision::notes as "unjudgeable: ..."; it would be refused in safe mode, which refuses the
/// shell bridge outright. The scanner is a tripwire, not containment: the sandbox is.
/// Copyable and safe to share between threads.
class Policy {
 public:
  /// Validates `spec`: twin names must be safe path components, no empty tool names, no "*" in a
  /// deny or always-refused list, set limits positive. Errc::invalid_config says which is wrong.
  [[nodiscard]] static inline Result<Policy> make(PolicySpec spec);

  /// The seed's matrix (PolicySpec::seed_default()), which always validates.
  [[nodiscard]] static Policy seed_default() { return Policy(PolicySpec::seed_default()); }

  /// Decides one normalised request: the form the launcher runs (Command::argv()). Pure: the
  /// same (policy, command) always gives the same Decision. Thread-safe; never fails.
  [[nodiscard]] inline Decision decide(const Command& command) const;

  /// Decides `request` normalised with the seed catalog and default RequestLimits; a request
  /// Command::make refuses is refused here with rule invalid_request_rule. Hosts with their own
  /// catalog use Executor::check, which normalises with it.
  [[nodiscard]] inline Decision decide(const Request& request) const;

  [[nodiscard]] const PolicySpec& spec() const noexcept { return spec_; }
  [[nodiscard]] bool safe_mode() const noexcept { return spec_.safe_mode; }
  [[nodiscard]] const std::string& revision() const noexcept { return spec_.revision; }

  /// The same policy with safe mode switched.
  [[nodiscard]] Policy with_safe_mode(bool on) const {
    auto spec = spec_;
    spec.safe_mode = on;
    return Policy(std::move(spec));
  }

  bool operator==(const Policy&) const = default;

 private:
  explicit Policy(PolicySpec spec) : spec_(std::move(spec)) {}
  [[nodiscard]] inline std::optional<Decision> refusal(const Command& command, const ShellScan& scan) const;
  PolicySpec spec_;
};

/// What a policy file defines (parse_policy, load_policy_file in policy_file.hpp): the policy,
/// and the tool catalog (ToolCatalog::seed_default() plus the file's [tools.*] entries).
struct PolicyFile {
  Policy policy;
  ToolCatalog catalog;
  bool operator==(const PolicyFile&) const = default;
};

}  // namespace pagi_exec

#include "pagi_exec/detail/policy_decide.hpp"
