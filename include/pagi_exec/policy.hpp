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
#include "pagi_exec/decision.hpp"
#include "pagi_exec/error.hpp"
#include "pagi_exec/paths.hpp"
#include "pagi_exec/program_name.hpp"
#include "pagi_exec/request.hpp"
#include "pagi_exec/shell_scan.hpp"

namespace pagi_exec {

/// A grant of every tool that is not refused.
inline constexpr std::string_view grant_all = "*";
/// PolicySpec::revision of a policy that was not loaded from a file.
inline constexpr std::string_view builtin_revision = "builtin";

/// What one twin may run: exact tool names or "*", explicit refusals, limits and network.
struct TwinGrants {
  std::vector<std::string> allow{};
  std::vector<std::string> deny{};  ///< matched like always_refused: by program name
  TwinLimits limits{};              ///< applied to every execution of this twin
  NetworkAccess network = NetworkAccess::none;  ///< never more than none in safe mode
  /// network = "egress": the domains its runs may reach through the proxy (required, not empty).
  std::vector<DomainPattern> allow_domains{};
  /// network = "egress": domains refused although allow_domains covers them (deny wins).
  std::vector<DomainPattern> deny_domains{};
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

/// The decision on `request`: normalised with `catalog` and `limits` (Command::make), judged by
/// `policy`, and when allowed checked against its tool's argument rules (why_not_call). A request
/// that cannot be normalised, or an allowed call its tool cannot take, gets
/// Decision::invalid_request with a reason naming what to change. Nothing runs, nothing is created.
/// This is what Executor::run and Executor::check decide with; a host needs no library for it.
[[nodiscard]] inline Decision judge(const Policy& policy, const ToolCatalog& catalog, const RequestLimits& limits,
                                    const Request& request);

/// The same, for a request already normalised (or refused) by Command::make with `request`.
[[nodiscard]] inline Decision judge(const Policy& policy, const Result<Command>& command, const Request& request);

}  // namespace pagi_exec

#include "pagi_exec/detail/policy_decide.hpp"
