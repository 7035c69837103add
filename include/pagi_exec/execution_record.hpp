// SPDX-License-Identifier: Apache-2.0
// ExecutionRecord: one request flattened, and the queries that page through records.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pagi_exec/error.hpp"
#include "pagi_exec/outcome.hpp"
#include "pagi_exec/request.hpp"

namespace pagi_exec {

/// How much of a request a record keeps (history and audit alike): all args together are cut to
/// this many bytes, and so is each other string taken from the request (tool, ids, namespace).
inline constexpr std::size_t max_recorded_args_bytes = 4096;
/// A decision's reason and an outcome's message are cut to this in a record.
inline constexpr std::size_t max_recorded_text_bytes = 4096;

/// `text` cut to at most `limit` bytes, never splitting a UTF-8 sequence (at most 3 more bytes are
/// given back, so invalid input cannot make it back up further). Sets `cut` when anything went.
[[nodiscard]] std::string bounded_text(std::string_view text, std::size_t limit, bool& cut);

/// The prefix of a request's args a record keeps.
struct BoundedArgs {
  std::vector<std::string> kept;  ///< the first args, the last one possibly cut short
  bool truncated = false;         ///< something was left out
};
/// At most `total_bytes` of `args` in all (an empty arg counting one byte) and `each_bytes` of any
/// one, in order: each arg is cut to what is left, and when nothing is left the rest are dropped.
[[nodiscard]] BoundedArgs bounded_args(std::span<const std::string> args, std::size_t total_bytes,
                                       std::size_t each_bytes = SIZE_MAX);

/// How much of a request and its outcome a record keeps.
struct RecordBounds {
  std::size_t field_bytes = max_recorded_args_bytes;    ///< each string of the request: tool, ids, each arg
  std::size_t args_bytes = max_recorded_args_bytes;     ///< all args together (see bounded_args)
  std::size_t text_bytes = max_recorded_text_bytes;     ///< the decision's reason and rule
  std::size_t message_bytes = max_recorded_text_bytes;  ///< the outcome's message
};

/// One request flattened: who asked what, what was decided, how it ended. The one record the
/// execution store holds, the audit log writes (docs/audit.md) and the gRPC adapter encodes.
struct ExecutionRecord {
  std::uint64_t sequence = 0;  ///< order of insertion, from 1; set by ExecutionStore::record
  std::string execution_id;
  std::string node;  ///< the node (server) that decided and ran it: TOOLS_NODE_ID
  std::string twin_id;
  std::string job_id;
  std::string ns;
  std::string tool;
  std::vector<std::string> args;  ///< a prefix of at most max_recorded_args_bytes bytes
  std::size_t arg_count = 0;      ///< how many args the request had
  bool args_truncated = false;    ///< `args` is not all of them (see max_recorded_args_bytes)
  bool allowed = false;
  std::string reason;  ///< the policy decision's reason
  std::string rule;    ///< the policy rule that decided
  std::vector<std::string> notes;  ///< what the policy could not judge ("unjudgeable: ...")
  bool ran = false;
  int exit_code = 0;
  int signal = 0;
  bool timed_out = false;
  bool cancelled = false;
  LimitHit limit_hit = LimitHit::none;
  Isolation isolation = Isolation::cwd;
  std::string message;
  CapturedStream out;  ///< kept while the store's output budget allows (see History)
  CapturedStream err;
  bool output_dropped = false;  ///< the output was dropped to stay within the budget
  Usage usage;
  std::chrono::microseconds elapsed{0};     ///< Outcome::elapsed: how long the command ran
  std::optional<WorkspaceUsage> workspace;  ///< Outcome::workspace
  std::optional<EgressSummary> egress;      ///< Outcome::egress
  std::chrono::system_clock::time_point started;
  std::chrono::system_clock::time_point finished;
  bool operator==(const ExecutionRecord&) const = default;
};

/// Builds the record of a finished request, keeping a bounded prefix of what the request carried
/// and of the decision's texts (`bounds`): a record stays small whatever was asked.
[[nodiscard]] ExecutionRecord make_record(const Request& request, const Outcome& outcome,
                                          std::chrono::system_clock::time_point started,
                                          std::chrono::system_clock::time_point finished,
                                          const RecordBounds& bounds = {});

/// The outcomes a History holds: all but auth_rejected (a call refused for its credential never
/// reaches the executor).
inline constexpr std::array<RecordOutcome, 5> history_outcomes = {
    RecordOutcome::allowed, RecordOutcome::refused, RecordOutcome::succeeded, RecordOutcome::failed,
    RecordOutcome::timed_out};

/// One of history_outcomes by name; Errc::invalid_request naming them for anything else.
[[nodiscard]] Result<RecordOutcome> history_outcome_from_string(std::string_view name);

/// True when `record` ended as `outcome` says: allowed and refused by its decision, the others by
/// how_it_ended() of an allowed request. A record of an allowed request matches two (allowed and
/// how it ended); none matches auth_rejected.
[[nodiscard]] bool matches(const ExecutionRecord& record, RecordOutcome outcome) noexcept;

/// A page of history, newest first, filtered.
struct HistoryQuery {
  /// Default of max_page_bytes: gRPC's default 4 MiB message limit, less 64 KiB for the rest of
  /// the response (encoded_size_bound is an upper bound, so a page of this bound always fits).
  static constexpr std::uint64_t default_max_page_bytes = (4ULL << 20) - (64ULL << 10);

  std::string twin_id;                  ///< empty: any
  std::string job_id;                   ///< empty: any
  std::optional<RecordOutcome> outcome;
  std::size_t page_size = 50;
  std::uint64_t before_sequence = 0;    ///< 0: from the newest; else only older records
  /// A page ends early (with next_before set) before its records' encoded_size_bound() passes
  /// this. A single record larger than this on its own comes without its output
  /// (output_dropped), so every page fits.
  std::uint64_t max_page_bytes = default_max_page_bytes;
};

/// An upper bound of the bytes `record` takes in a length-delimited encoding such as protobuf's,
/// as one element of a repeated field: each string and number costs at most its bytes plus 11.
[[nodiscard]] std::uint64_t encoded_size_bound(const ExecutionRecord& record) noexcept;

/// `record` within `max_bytes` of encoded_size_bound(): itself, or when too big without its
/// captured output (output_dropped set). Other fields are bounded by make_record.
[[nodiscard]] ExecutionRecord fitted(ExecutionRecord record, std::uint64_t max_bytes);

struct HistoryPage {
  std::vector<ExecutionRecord> records;
  std::uint64_t next_before = 0;  ///< pass as before_sequence for the next page; 0: no more
};

/// Fills a page the one way every store does: records offered newest first, already filtered;
/// add() says false once the page is full (page_size, or max_page_bytes with one record in it),
/// and then next_before is set to go on after the last record taken.
class PageFiller {
 public:
  explicit PageFiller(const HistoryQuery& query) noexcept;
  [[nodiscard]] bool add(const ExecutionRecord& record);
  /// The page size a store needs at most from its source: page_size clamped, plus one.
  [[nodiscard]] std::size_t rows_wanted() const noexcept { return page_size_ + 1; }
  [[nodiscard]] HistoryPage take() { return std::move(page_); }

 private:
  std::size_t page_size_;
  std::uint64_t max_page_bytes_;
  std::uint64_t page_bytes_ = 0;
  HistoryPage page_;
};

/// True when `record` passes the query's filters (twin, job, outcome, before_sequence).
[[nodiscard]] bool selected(const ExecutionRecord& record, const HistoryQuery& query) noexcept;

/// The captured output `record` holds, as output budgets count it (each line and its newline).
[[nodiscard]] std::uint64_t output_size(const ExecutionRecord& record) noexcept;

/// The most records a page holds, whatever page_size asks.
inline constexpr std::size_t max_page_size = 1000;

}  // namespace pagi_exec
