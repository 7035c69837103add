// SPDX-License-Identifier: Apache-2.0
// Readiness: the rules, and their publication to grpc's health service.
#include "readiness.hpp"

#include "log.hpp"
#include "tools.grpc.pb.h"

namespace tools_server {

ReadinessFacts readiness_facts(const pagi_exec::HealthReport& report, bool audit_required, bool draining) {
  return {.started = true,
          .audit_required = audit_required,
          .audit_healthy = report.audit == nullptr || report.audit->status().healthy,
          .draining = draining,
          .sandbox_usable = report.sandbox_dir_error.empty()};
}

bool is_serving(const ReadinessFacts& facts) noexcept {
  return facts.started && !facts.draining && facts.sandbox_usable && (facts.audit_healthy || !facts.audit_required);
}

std::string not_serving_reason(const ReadinessFacts& facts) {
  if (!facts.started) return "not started";
  if (facts.draining) return "draining";
  if (facts.audit_required && !facts.audit_healthy) return "the audit log is failing and TOOLS_AUDIT_REQUIRED is set";
  if (!facts.sandbox_usable) return "SANDBOX_DIR cannot hold workspaces";
  return {};
}

Readiness::Readiness(grpc::HealthCheckServiceInterface& health, const pagi_exec::Host& host)
    : health_(health), host_(host) {
  update();
}

void Readiness::update() {
  const auto report = host_.health();  // outside the lock: it reads the host's own state
  const std::lock_guard lock(mutex_);
  publish(readiness_facts(report, host_.settings().audit.required, draining_));
}

void Readiness::drain() {
  const std::lock_guard lock(mutex_);
  draining_ = true;
  publish({.started = true, .audit_required = false, .audit_healthy = true, .draining = true});
}

void Readiness::publish(const ReadinessFacts& facts) {
  const bool serving = is_serving(facts);
  if (serving_ == serving) return;
  health_.SetServingStatus("", serving);
  health_.SetServingStatus(tools::ToolExecutorService::service_full_name(), serving);
  const bool first = !serving_;
  serving_ = serving;
  if (serving && first) return;  // serving from the start: the "listening on" line says so
  if (serving) {
    log(LogLevel::info, "grpc.health.v1: SERVING");
  } else {
    log(LogLevel::warn, "grpc.health.v1: NOT_SERVING (" + not_serving_reason(facts) + ")");
  }
}

}  // namespace tools_server
