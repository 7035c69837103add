// SPDX-License-Identifier: Apache-2.0
// read_audit_log: reads an audit log line by line, filters it and counts, tolerating a torn last line.
#include "pagi_exec/audit.hpp"

#include <cerrno>
#include <fstream>
#include <system_error>

#include "audit_json.hpp"

namespace pagi_exec {

namespace {

bool matches(const AuditEntry& entry, const AuditFilter& filter) {
  if (filter.twin && entry.twin_id != *filter.twin && entry.authenticated_twin != filter.twin) return false;
  if (filter.job && entry.job_id != *filter.job) return false;
  if (filter.outcome && entry.outcome() != *filter.outcome) return false;
  if (filter.since || filter.until) {
    const auto time = parse_rfc3339(entry.time);
    if (!time) return false;  // a record without a readable time matches no time window
    if (filter.since && *time < *filter.since) return false;
    if (filter.until && *time >= *filter.until) return false;
  }
  return true;
}

void count(AuditReport& report, const AuditEntry& entry) {
  if (entry.type == "egress") {
    ++(entry.allowed ? report.egress_allowed : report.egress_refused);
    return;
  }
  switch (entry.record_outcome()) {
    case RecordOutcome::auth_rejected: ++report.auth_rejected; return;
    case RecordOutcome::refused: ++report.refused; [[fallthrough]];
    case RecordOutcome::allowed: ++report.decisions; return;
    case RecordOutcome::succeeded: ++report.succeeded; break;
    case RecordOutcome::failed: ++report.failed; break;
    case RecordOutcome::timed_out: ++report.timed_out; break;
  }
  ++report.executions;
}

}  // namespace

Result<AuditReport> read_audit_log(const std::filesystem::path& path, const AuditFilter& filter) {
  if (filter.outcome && !record_outcome_from_string(*filter.outcome)) {
    return fail(Errc::invalid_request,
                "unknown outcome '" + *filter.outcome + "': use " + list_names(all_record_outcomes, " or "));
  }
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return fail(Errc::io, "read audit log " + path.string() + ": it is a folder, not a file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(Errc::io, "open audit log " + path.string() + " for reading", errno);
  AuditReport report;
  std::string line;
  while (std::getline(in, line)) {
    ++report.lines;
    // getline stops at '\n' or at the end of the file; only the final line can lack the '\n'.
    const bool complete = !in.eof();
    if (line.empty()) continue;  // a blank line is no record, and no damage either
    auto entry = detail::audit_entry_from_line(std::move(line));
    line.clear();
    if (!entry) {
      ++(complete ? report.bad_lines : report.torn_lines);
      continue;
    }
    if (!matches(*entry, filter)) continue;
    count(report, *entry);
    report.entries.push_back(std::move(*entry));
  }
  if (in.bad()) return fail(Errc::io, "read audit log " + path.string(), errno);
  return report;
}

}  // namespace pagi_exec
