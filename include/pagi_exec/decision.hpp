// SPDX-License-Identifier: Apache-2.0
// Decision and TwinLimits: what a policy answers, as plain values. Apart from policy.hpp so that
// the types that carry a decision (Outcome, history, audit) do not compile the policy itself.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pagi_exec/egress_domains.hpp"

namespace pagi_exec {

/// What a twin's runs may reach on the network (the policy's `network`).
enum class NetworkAccess {
  none,    ///< loopback of the run's own namespace only (the default)
  egress,  ///< the domains of allow_domains, through the egress proxy, and nothing else
  host,    ///< the host's whole network (needs the server's TOOLS_ALLOW_HOST_NETWORK)
};

/// "none", "egress" or "host": as a policy file writes it.
[[nodiscard]] constexpr std::string_view to_string(NetworkAccess access) noexcept {
  switch (access) {
    case NetworkAccess::egress: return "egress";
    case NetworkAccess::host: return "host";
    case NetworkAccess::none: break;
  }
  return "none";
}

/// Decision::rule of a request that cannot run as asked: refused before the policy could judge it
/// (Command::make failed: a NUL byte, too many args or bytes), or allowed by the policy but with
/// arguments its tool cannot take (why_not_call: command_exec without a line, file_write without
/// a path and content). Not a policy refusal: it is answered as a usage error (exit_usage).
inline constexpr std::string_view invalid_request_rule = "invalid_request";

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

/// What a run reaches on the network, as one line: "none", "host", or "egress to pypi.org,
/// *.pythonhosted.org:443 except bad.pythonhosted.org" (for the CLI and logs).
[[nodiscard]] inline std::string describe_network(NetworkAccess access, const std::vector<DomainPattern>& allow,
                                                  const std::vector<DomainPattern>& deny) {
  if (access != NetworkAccess::egress) return std::string(to_string(access));
  const auto join = [](const std::vector<DomainPattern>& patterns) {
    std::string out;
    for (const auto& p : patterns) out += (out.empty() ? "" : ", ") + p.text();
    return out;
  };
  std::string out = "egress to " + join(allow);
  if (!deny.empty()) out += " except " + join(deny);
  return out;
}

/// The verdict on one request: allowed or not, a reason a person can act on, the rule that
/// decided, and for an allowed request what it runs with.
struct Decision {
  bool allowed = false;
  std::string reason{};
  std::string rule{};  ///< e.g. "always_refused[rm]", "twins.twin-aegis.allow[*]", "default_deny"
  /// Allowed: the twin's limits (capped by safe_mode_limits in safe mode). Refused: unset.
  TwinLimits limits{};
  /// Allowed: what the run may reach (the twin's `network`); none when refused and in safe mode.
  NetworkAccess network = NetworkAccess::none;
  /// network == egress: the twin's allow_domains and deny_domains, which the proxy applies.
  std::vector<DomainPattern> allow_domains{};
  std::vector<DomainPattern> deny_domains{};
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

}  // namespace pagi_exec
