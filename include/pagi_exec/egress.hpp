// SPDX-License-Identifier: Apache-2.0
// What the egress proxy reports: one record per connection attempt of a run (for the audit log)
// and a run's totals (for its outcome and history record).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "pagi_exec/error.hpp"

namespace pagi_exec {

/// The port the egress proxy answers on, on 127.0.0.1 inside every egress run's own network
/// namespace; the run's HTTP_PROXY, HTTPS_PROXY and ALL_PROXY name it.
inline constexpr std::uint16_t egress_proxy_port = 3128;

/// What the operator sets for every egress run (the TOOLS_EGRESS_* settings).
struct EgressSettings {
  /// Names answered from here instead of DNS: "name" -> addresses (TOOLS_EGRESS_HOSTS). For tests
  /// and pinned upstreams; the address checks apply to these answers too.
  std::map<std::string, std::vector<std::string>> hosts{};
  /// CIDR ranges opened on purpose although they are loopback, private, link-local, multicast or
  /// the host's own (TOOLS_EGRESS_ALLOW_RANGES), e.g. "10.20.0.0/16" for an internal mirror.
  std::vector<std::string> allowed_ranges{};
  std::size_t max_connections_per_run = 32;    ///< open at once; one more is refused (TOOLS_EGRESS_MAX_CONNECTIONS)
  std::uint64_t bytes_per_second_per_run = 0;  ///< both directions together; 0: unlimited (TOOLS_EGRESS_BANDWIDTH)
  std::size_t max_connections_total = 512;     ///< across all runs: bounds the proxy's memory (about 72 MiB)
  std::chrono::milliseconds connect_timeout{10'000};
  bool operator==(const EgressSettings&) const = default;
};

/// One connection attempt of an egress run through the proxy, allowed or refused, as it ended.
struct EgressConnection {
  std::string twin{};
  std::string execution_id{};
  std::string method{};   ///< "CONNECT", or the method of a forwarded plain-HTTP request
  std::string host{};     ///< as requested (normalized)
  std::uint16_t port = 0;
  std::string address{};  ///< the address connected to (or refused); empty when not resolved
  bool allowed = false;
  /// What decided: "egress.allow_domains[*.pypi.org]", "egress.deny_domains[x.pypi.org]",
  /// "egress.not_allowed", "egress.blocked_address[127.0.0.0/8]", "egress.connection_limit",
  /// "egress.resolve_failed", "egress.connect_failed", "egress.bad_request".
  std::string rule{};
  std::string reason{};   ///< the sentence a refused client reads in the answer's body
  std::uint64_t bytes_up = 0;    ///< from the run to the destination
  std::uint64_t bytes_down = 0;  ///< from the destination to the run
  std::chrono::system_clock::time_point started{};
  std::chrono::milliseconds duration{0};
  bool operator==(const EgressConnection&) const = default;
};

/// A run's connections through the proxy in sum.
struct EgressSummary {
  std::uint32_t allowed = 0;  ///< connections the proxy opened for the run
  std::uint32_t refused = 0;  ///< attempts it refused (policy, address, limit, bad request, failures)
  std::uint64_t bytes_up = 0;
  std::uint64_t bytes_down = 0;
  bool operator==(const EgressSummary&) const = default;
};

/// Whether `text` is an IPv4 or IPv6 address literal ("192.0.2.7", "2001:db8::1").
[[nodiscard]] bool is_ip_literal(std::string_view text) noexcept;

/// Checks one EgressSettings::allowed_ranges entry: an address, '/', a prefix length that fits it
/// ("10.20.0.0/16", "fd00::/8"), with no bits set past the prefix. Errc::invalid_config saying what
/// is wrong and what to write.
[[nodiscard]] Result<void> check_egress_range(std::string_view cidr);

}  // namespace pagi_exec
