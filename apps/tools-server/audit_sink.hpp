// SPDX-License-Identifier: Apache-2.0
// LoggingAuditSink: the server's audit sink; every record the audit log fails to store is logged.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>

#include <pagi_exec/pagi_exec.hpp>

namespace tools_server {

/// Forwards every record to an AuditLog and returns its result unchanged. A failure is logged as
/// one error line; while failures repeat, at most one line per `quiet` (counting the ones not
/// shown), and one info line when the log writes again. Thread-safe.
class LoggingAuditSink final : public pagi_exec::AuditSink {
 public:
  explicit LoggingAuditSink(std::shared_ptr<pagi_exec::AuditLog> log,
                            std::chrono::seconds quiet = std::chrono::seconds(10))
      : log_(std::move(log)), quiet_(quiet) {}

  [[nodiscard]] pagi_exec::Result<void> decided(const pagi_exec::Request& request,
                                                const pagi_exec::Outcome& outcome) override;
  [[nodiscard]] pagi_exec::Result<void> finished(const pagi_exec::Request& request,
                                                 const pagi_exec::Outcome& outcome) override;
  [[nodiscard]] pagi_exec::Result<void> rejected(const pagi_exec::Request& request,
                                                 const pagi_exec::AuthRejection& rejection) override;
  [[nodiscard]] pagi_exec::Result<void> egress(const pagi_exec::EgressConnection& connection) override;

 private:
  pagi_exec::Result<void> noted(pagi_exec::Result<void> result, const char* record);

  std::shared_ptr<pagi_exec::AuditLog> log_;
  std::chrono::seconds quiet_;
  std::mutex mutex_;
  std::uint64_t failing_ = 0;  // failures in a row
  std::uint64_t unshown_ = 0;  // of those, not logged yet
  std::chrono::steady_clock::time_point last_shown_{};
};

}  // namespace tools_server
