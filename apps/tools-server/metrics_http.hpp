// SPDX-License-Identifier: Apache-2.0
// MetricsHttp: the metrics listener (TOOLS_METRICS_ADDR), GET /metrics over HTTP/1.1.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include <pagi_exec/pagi_exec.hpp>

namespace httplib {
class Server;
}  // namespace httplib

namespace tools_server {

/// Threads that answer scrapes. A connection beyond them waits in a short queue; when that is
/// full the accepting thread answers it itself, and so accepts nothing meanwhile: the kernel's
/// backlog holds the rest. A flood of scrapes cannot make the listener grow.
inline constexpr std::size_t metrics_threads = 2;
inline constexpr std::size_t metrics_queue = 8;

/// Serves server_metrics() and the host's figures in the Prometheus text format (version 0.0.4)
/// at GET /metrics on its own threads; every other path is 404. Stops (and joins its threads)
/// when destroyed.
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
  [[nodiscard]] const std::string& url() const noexcept { return url_; }
  /// Prints "metrics on <url>" on stdout (after the "listening on" line: tests read it) and logs
  /// it, with a warning when it is reachable beyond loopback.
  void announce() const;

 private:
  MetricsHttp() = default;

  std::unique_ptr<httplib::Server> server_;
  std::string address_;
  std::string url_;
  std::atomic<bool> returned_{false};  // the serving loop has ended
  std::thread thread_;
};

/// The metrics text as a scrape answers it, with the host's running executions and policy
/// revision as of now.
[[nodiscard]] std::string render_metrics(const pagi_exec::Host& host);

}  // namespace tools_server
