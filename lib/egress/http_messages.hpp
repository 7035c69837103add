// SPDX-License-Identifier: Apache-2.0
// The proxy's side of HTTP: what a run's request head asks for (Boost.Beast reads the head,
// Boost.URL the target), the head sent upstream for a forwarded plain-HTTP request, and the
// answers the proxy writes itself.
#pragma once

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <cstdint>
#include <optional>
#include <string>

namespace pagi_exec::egress {

/// Why the proxy answers a request itself: the HTTP status, the rule ("egress.bad_request"), and
/// the sentence the client reads.
struct Refusal {
  unsigned status = 403;
  std::string rule{};
  std::string reason{};
};

/// What a request head asks the proxy for.
struct ProxyRequest {
  std::string method{};         ///< "CONNECT", or the forwarded request's method
  std::string host{};           ///< normalized (normalize_egress_host); may be empty when refused
  std::uint16_t port = 0;
  bool tunnel = false;          ///< CONNECT: relay bytes after "200"
  std::string upstream_head{};  ///< a forwarded request: its head in origin form, for the upstream
  std::optional<Refusal> refused{};  ///< set when the request is malformed or never allowed
};

/// Reads a request head from a run. CONNECT needs "host:port"; anything else needs an absolute
/// "http://" target, and is rewritten for the upstream: origin-form target, Host set to the
/// target's authority, Proxy-* and hop-by-hop fields (and those Connection names) dropped, and
/// "Connection: close" so that one client connection carries one request to one destination.
[[nodiscard]] ProxyRequest interpret(const boost::beast::http::request<boost::beast::http::empty_body>& head);

/// The proxy's own answer: `status` with `body` as text, naming `rule` in X-Pagi-Egress-Rule.
[[nodiscard]] std::string proxy_answer(unsigned status, const std::string& rule, const std::string& body);

/// The answer to an allowed CONNECT, after which bytes are relayed.
inline constexpr std::string_view tunnel_established = "HTTP/1.1 200 Connection established\r\n\r\n";

}  // namespace pagi_exec::egress
