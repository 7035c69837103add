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

#include "pagi_exec/egress.hpp"
#include "pagi_exec/egress_domains.hpp"
#include "pagi_exec/error.hpp"
#include "sys/unique_fd.hpp"

namespace pagi_exec::egress {

/// What the operator sets for every egress run (public: SandboxSpec::egress).
using ProxySettings = pagi_exec::EgressSettings;

/// What one run may reach: its twin's allow_domains and deny_domains. Deny wins.
struct EgressRules {
  std::vector<DomainPattern> allow{};
  std::vector<DomainPattern> deny{};
  bool operator==(const EgressRules&) const = default;
};

/// One connection attempt of a run, reported when it ends (public: the audit log writes it).
using ConnectionRecord = pagi_exec::EgressConnection;
/// A run's connections in sum, for its outcome and history record.
using EgressSummary = pagi_exec::EgressSummary;

/// Receives every ConnectionRecord, on the proxy's thread, before the run's Session::finish
/// returns. Must not block for long (it writes an audit record and counts metrics).
using ConnectionSink = std::function<void(const ConnectionRecord&)>;

struct RunState;  // one run's listener, connections and totals (proxy.cpp)

class Proxy {
 public:
  class Session;

  /// Starts the proxy's thread. Errc::invalid_config for a bad range or host address.
  struct Impl;
  [[nodiscard]] static Result<std::unique_ptr<Proxy>> make(ProxySettings settings, ConnectionSink sink);
  ~Proxy();  ///< ends every session's connections and joins the thread
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  /// Serves `listener` (a bound, listening TCP socket) for one run until the Session ends.
  [[nodiscard]] Result<Session> serve(sys::unique_fd listener, EgressRules rules, std::string twin, std::string execution_id);

 private:
  explicit Proxy(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;  // shared with every RunState: a Session may end after the Proxy
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
  explicit Session(std::shared_ptr<RunState> state);
  std::shared_ptr<RunState> state_;
};

}  // namespace pagi_exec::egress
