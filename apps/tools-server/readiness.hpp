// SPDX-License-Identifier: Apache-2.0
// Readiness: when the standard grpc.health.v1.Health service says SERVING, and keeping it current.
#pragma once

#include <mutex>
#include <optional>
#include <string>

#include <grpcpp/health_check_service_interface.h>

#include <pagi_exec/pagi_exec.hpp>

namespace tools_server {

/// What readiness is decided from.
struct ReadinessFacts {
  bool started = false;          ///< the host started: sandbox probed, policy loaded, audit log opened
  bool audit_required = false;   ///< TOOLS_AUDIT_REQUIRED: executions the audit log cannot record are refused
  bool audit_healthy = true;     ///< the audit log's last write succeeded (true without one)
  bool draining = false;         ///< SIGTERM started the drain
  bool sandbox_usable = true;    ///< SANDBOX_DIR can hold workspaces (not removed, not read-only)
  bool operator==(const ReadinessFacts&) const = default;
};

/// The facts of a started host as of `report` (Host::health()).
[[nodiscard]] ReadinessFacts readiness_facts(const pagi_exec::HealthReport& report, bool audit_required, bool draining);

/// Whether a load balancer should send executions here: the host started, it is not draining,
/// SANDBOX_DIR can hold workspaces, and the audit log writes when it must. A degraded host
/// (isolation fallback, failed policy reload) still serves, as HealthCheck says.
[[nodiscard]] bool is_serving(const ReadinessFacts& facts) noexcept;

/// Why `facts` are not serving, in a few words ("draining"); empty when they are.
[[nodiscard]] std::string not_serving_reason(const ReadinessFacts& facts);

/// Publishes readiness to grpc's default health service under "" (the server) and
/// "tools.ToolExecutorService", and logs each change. Thread-safe.
class Readiness {
 public:
  /// `health` is the server's (Server::GetHealthCheckService()); both must outlive this object.
  Readiness(grpc::HealthCheckServiceInterface& health, const pagi_exec::Host& host);

  /// Re-reads the host's health (after SIGHUP, on the main loop's tick, on an audit failure).
  void update();
  /// NOT_SERVING from now on: the drain started.
  void drain();

 private:
  void publish(const ReadinessFacts& facts);  // with mutex_ held

  grpc::HealthCheckServiceInterface& health_;
  const pagi_exec::Host& host_;
  std::mutex mutex_;
  bool draining_ = false;
  std::optional<bool> serving_;  // as last published; unset before the first
};

}  // namespace tools_server
