// SPDX-License-Identifier: Apache-2.0
// LoggingAuditSink: forwards to the AuditLog and reports its failures in the server log.
#include "audit_sink.hpp"

#include "log.hpp"
#include "metrics.hpp"

namespace tools_server {

pagi_exec::Result<void> LoggingAuditSink::decided(const pagi_exec::Request& request,
                                                  const pagi_exec::Outcome& outcome) {
  return noted(log_->decided(request, outcome), "decision");
}

pagi_exec::Result<void> LoggingAuditSink::finished(const pagi_exec::Request& request,
                                                   const pagi_exec::Outcome& outcome) {
  return noted(log_->finished(request, outcome), "execution");
}

pagi_exec::Result<void> LoggingAuditSink::rejected(const pagi_exec::Request& request,
                                                   const pagi_exec::AuthRejection& rejection) {
  return noted(log_->rejected(request, rejection), "auth_rejected");
}

pagi_exec::Result<void> LoggingAuditSink::egress(const pagi_exec::EgressConnection& connection) {
  return noted(log_->egress(connection), "egress");
}

// A full disk fails every record: the first failure is logged at once, repeats at most once per
// `quiet_` with the count of the lines held back, so the server log cannot fill the disk too.
pagi_exec::Result<void> LoggingAuditSink::noted(pagi_exec::Result<void> result, const char* record) {
  const auto now = std::chrono::steady_clock::now();
  std::unique_lock lock(mutex_);
  if (result) {
    if (failing_ == 0) return result;
    const auto failed = failing_;
    failing_ = unshown_ = 0;
    lock.unlock();
    log(LogLevel::info, "audit log writes again after " + std::to_string(failed) + " failed records",
        {LogField::word("event", "audit_recovered"), LogField::number("failed_records", static_cast<std::int64_t>(failed))});
    return result;
  }
  server_metrics().audit_write_failed();
  ++failing_;
  if (failing_ > 1 && now - last_shown_ < quiet_) {
    ++unshown_;
    return result;
  }
  const auto held_back = unshown_;
  unshown_ = 0;
  last_shown_ = now;
  lock.unlock();
  log(LogLevel::error,
      std::string("audit record NOT written (") + record + "): " + result.error().message() +
          (held_back == 0 ? "" : " (" + std::to_string(held_back) + " more failures not shown)"),
      {LogField::word("event", "audit_failed"), LogField::word("record", record),
       LogField::number("not_shown", static_cast<std::int64_t>(held_back))});
  return result;
}

}  // namespace tools_server
