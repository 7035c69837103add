// SPDX-License-Identifier: Apache-2.0
// The egress proxy: an HTTP proxy (CONNECT for HTTPS and any TCP, plain-HTTP forwarding) that
// serves one listening socket per egress run, normally created inside the run's own network
// namespace, where it is the only way out. It runs in the server, outside every sandbox: it
// matches the requested host against the twin's lists, resolves the name itself, refuses
// addresses of the host and of private ranges, and reports every connection attempt.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "pagi_exec/egress_domains.hpp"
#include "pagi_exec/error.hpp"
#include "sys/unique_fd.hpp"

namespace pagi_exec::egress {

/// What the operator sets for every egress run (TOOLS_EGRESS_* settings).
struct ProxySettings {
  /// Names answered from here instead of DNS: "name" -> addresses (TOOLS_EGRESS_HOSTS). For tests
  /// and pinned upstreams; the address checks apply to these answers too.
  std::map<std::string, std::vector<std::string>> hosts{};
  /// CIDR ranges opened on purpose although they are loopback, private, link-local, multicast or
  /// the host's own (TOOLS_EGRESS_ALLOW_RANGES), e.g. "10.20.0.0/16" for an internal mirror.
  std::vector<std::string> allowed_ranges{};
  std::size_t max_connections_per_run = 32;    ///< open at once; one more is refused (TOOLS_EGRESS_MAX_CONNECTIONS)
  std::uint64_t bytes_per_second_per_run = 0;  ///< both directions together; 0: unlimited (TOOLS_EGRESS_BANDWIDTH)
  std::size_t max_connections_total = 1024;    ///< across all runs: bounds the proxy's memory
  std::chrono::milliseconds connect_timeout{10'000};
};

/// What one run may reach: its twin's allow_domains and deny_domains. Deny wins.
struct EgressRules {
  std::vector<DomainPattern> allow{};
  std::vector<DomainPattern> deny{};
  bool operator==(const EgressRules&) const = default;
};

/// One connection attempt of a run, allowed or refused, reported when it ends.
struct ConnectionRecord {
  std::string twin{};
  std::string execution_id{};
  std::string method{};   ///< "CONNECT", or the method of a forwarded plain-HTTP request
  std::string host{};     ///< as requested (normalized)
  std::uint16_t port = 0;
  std::string address{};  ///< the address connected to (or refused); empty when not resolved
  bool allowed = false;
  /// What decided: "egress.allow_domains[*.pypi.org]", "egress.deny_domains[x.pypi.org]",
  /// "egress.not_allowed", "egress.blocked_address[127.0.0.0/8]", "egress.connection_limit",
  /// "egress.resolve_failed", "egress.connect_failed", "egress.bad_request", "egress.run_ended".
  std::string rule{};
  std::string reason{};   ///< the sentence a refused client reads in the 403 body
  std::uint64_t bytes_up = 0;    ///< from the run to the destination
  std::uint64_t bytes_down = 0;  ///< from the destination to the run
  std::chrono::system_clock::time_point started{};
  std::chrono::milliseconds duration{0};
};

/// A run's connections in sum, for its outcome and history record.
struct EgressSummary {
  std::uint32_t allowed = 0;
  std::uint32_t refused = 0;
  std::uint64_t bytes_up = 0;
  std::uint64_t bytes_down = 0;
  bool operator==(const EgressSummary&) const = default;
};

/// Receives every ConnectionRecord, on the proxy's thread, before the run's Session::finish
/// returns. Must not block for long (it writes an audit record and counts metrics).
using ConnectionSink = std::function<void(const ConnectionRecord&)>;

class Proxy {
 public:
  class Session;

  /// Starts the proxy's thread. Errc::invalid_config for a bad range or host address.
  [[nodiscard]] static Result<std::unique_ptr<Proxy>> make(ProxySettings settings, ConnectionSink sink);
  ~Proxy();  ///< ends every session's connections and joins the thread
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  /// Serves `listener` (a bound, listening TCP socket) for one run until the Session ends.
  [[nodiscard]] Result<Session> serve(unique_fd listener, EgressRules rules, std::string twin, std::string execution_id);

 private:
  struct Impl;
  explicit Proxy(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// One run's share of the proxy. Move-only; the destructor calls finish().
class Proxy::Session {
 public:
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;
  ~Session();
  /// Stops accepting, closes every connection of the run, waits until each one's record reached
  /// the sink, and returns the totals. Later calls return the same totals.
  EgressSummary finish();

 private:
  friend class Proxy;
  struct State;
  explicit Session(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

}  // namespace pagi_exec::egress
