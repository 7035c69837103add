// SPDX-License-Identifier: Apache-2.0
// MetricsHttp: the metrics listener (TOOLS_METRICS_ADDR), GET /metrics over HTTP/1.1.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include <pagi_exec/pagi_exec.hpp>

namespace tools_server {

/// Connections the listener holds at once. When one more comes, the one open longest is closed
/// to make room: a scrape takes milliseconds, so what has been open longest is idle or slow, and
/// a flood of connections cannot keep a scrape out. This bounds the listener's descriptors.
inline constexpr std::size_t metrics_max_connections = 64;
/// The most time one request may take to arrive (head and body), and a kept-alive connection may
/// wait for its next: a client that trickles a byte at a time is cut at this, whatever it sends.
inline constexpr std::chrono::seconds metrics_request_deadline{5};

/// Serves server_metrics() and the host's figures in the Prometheus text format (version 0.0.4)
/// at GET /metrics, on one thread of its own (Boost.Beast on an asio io_context, a coroutine per
/// connection); every other path is 404. Stops (and joins its thread) when destroyed.
class MetricsHttp {
 public:
  /// Binds `address` ("host:port", port 0 picks a free one) and starts serving; an empty
  /// address starts nothing (nullptr). `host` must outlive the listener. Errc::io naming the
  /// address when it cannot bind (in use, not permitted, no such address).
  [[nodiscard]] static pagi_exec::Result<std::unique_ptr<MetricsHttp>> start(const std::string& address,
                                                                             const pagi_exec::Host& host);
  ~MetricsHttp();
  MetricsHttp(const MetricsHttp&) = delete;
  MetricsHttp& operator=(const MetricsHttp&) = delete;

  /// "http://127.0.0.1:9464/metrics", with the port that was bound.
  [[nodiscard]] const std::string& url() const noexcept;
  /// Prints "metrics on <url>" on stdout (after the "listening on" line: tests read it) and logs
  /// it, with a warning when it is reachable beyond loopback.
  void announce() const;

  struct Impl;

 private:
  explicit MetricsHttp(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// The metrics text as a scrape answers it, with the host's running executions and policy
/// revision as of now.
[[nodiscard]] std::string render_metrics(const pagi_exec::Host& host);

}  // namespace tools_server
