// SPDX-License-Identifier: Apache-2.0
// History: the ring, its output budget, and filtered paging.
#include "pagi_exec/history.hpp"

#include <algorithm>

namespace pagi_exec {
namespace {

// Each length-delimited field: tag (at most 2 bytes for field numbers below 2048), length varint
// (at most 5 bytes for sizes below 4 GiB), and the bytes; numbers and booleans fit in 11 too.
constexpr std::uint64_t per_field = 11;

std::uint64_t field_bytes(const std::string& text) noexcept { return text.size() + per_field; }

std::uint64_t field_bytes(const std::vector<std::string>& texts) noexcept {
  std::uint64_t bytes = 0;
  for (const auto& text : texts) bytes += field_bytes(text);
  return bytes;
}

std::string bounded(std::string_view text, std::size_t limit) {
  bool ignored = false;
  return bounded_text(text, limit, ignored);
}

}  // namespace

std::uint64_t output_size(const ExecutionRecord& record) noexcept {
  std::uint64_t bytes = 0;
  for (const auto* stream : {&record.out, &record.err}) {
    for (const auto& line : stream->lines) bytes += line.size() + 1;
  }
  return bytes;
}

std::string bounded_text(std::string_view text, std::size_t limit, bool& cut) {
  if (text.size() <= limit) return std::string(text);
  cut = true;
  std::size_t n = limit;
  const auto continuation = [&](std::size_t i) { return (static_cast<unsigned char>(text[i]) & 0xC0U) == 0x80U; };
  for (int back = 0; back < 3 && n > 0 && continuation(n); ++back) --n;
  return std::string(text.substr(0, n));
}

BoundedArgs bounded_args(std::span<const std::string> args, std::size_t total_bytes, std::size_t each_bytes) {
  BoundedArgs out;
  std::size_t budget = total_bytes;
  for (const auto& arg : args) {
    if (budget == 0) {
      out.truncated = true;
      break;
    }
    auto kept = bounded_text(arg, std::min(each_bytes, budget), out.truncated);
    budget -= std::max<std::size_t>(kept.size(), 1);  // an empty arg counts one byte: a million are not free
    out.kept.push_back(std::move(kept));
  }
  return out;
}

std::uint64_t encoded_size_bound(const ExecutionRecord& r) noexcept {
  constexpr std::uint64_t fixed_fields = 16;  // numbers, booleans, times, the element's own tag and length
  std::uint64_t bytes = fixed_fields * per_field + 2 * 40;  // two RFC 3339 times of at most 40 bytes
  for (const auto* text : {&r.execution_id, &r.node, &r.twin_id, &r.job_id, &r.ns, &r.tool, &r.reason, &r.rule, &r.message}) {
    bytes += field_bytes(*text);
  }
  return bytes + field_bytes(r.args) + field_bytes(r.out.lines) + field_bytes(r.err.lines);
}

ExecutionRecord fitted(ExecutionRecord record, std::uint64_t max_bytes) {
  if (encoded_size_bound(record) <= max_bytes) return record;
  record.out.lines.clear();
  record.err.lines.clear();
  record.output_dropped = true;
  return record;
}

ExecutionRecord make_record(const Request& request, const Outcome& outcome,
                            std::chrono::system_clock::time_point started,
                            std::chrono::system_clock::time_point finished, const RecordBounds& bounds) {
  auto args = bounded_args(request.args, bounds.args_bytes, bounds.field_bytes);
  return ExecutionRecord{
      .execution_id = outcome.execution_id,
      .twin_id = bounded(request.twin_id, bounds.field_bytes),
      .job_id = bounded(request.job_id, bounds.field_bytes),
      .ns = bounded(request.ns, bounds.field_bytes),
      .tool = bounded(request.tool, bounds.field_bytes),
      .args = std::move(args.kept),
      .arg_count = request.args.size(),
      .args_truncated = args.truncated,
      .allowed = outcome.decision.allowed,
      .reason = bounded(outcome.decision.reason, bounds.text_bytes),
      .rule = bounded(outcome.decision.rule, bounds.text_bytes),
      .notes = outcome.decision.notes,
      .ran = outcome.ran,
      .exit_code = outcome.exit_code,
      .signal = outcome.signal,
      .timed_out = outcome.timed_out,
      .cancelled = outcome.cancelled,
      .limit_hit = outcome.limit_hit,
      .isolation = outcome.isolation,
      .message = bounded(outcome.message, bounds.message_bytes),
      .out = outcome.out,
      .err = outcome.err,
      .usage = outcome.usage,
      .elapsed = outcome.elapsed,
      .workspace = outcome.workspace,
      .egress = outcome.egress,
      .started = started,
      .finished = finished,
  };
}

Result<RecordOutcome> history_outcome_from_string(std::string_view name) {
  const auto outcome = record_outcome_from_string(name);
  if (!outcome || std::find(history_outcomes.begin(), history_outcomes.end(), *outcome) == history_outcomes.end()) {
    return fail(Errc::invalid_request,
                "outcome '" + std::string(name) + "' is not one of " + list_names(history_outcomes));
  }
  return *outcome;
}

bool matches(const ExecutionRecord& record, RecordOutcome outcome) noexcept {
  switch (outcome) {
    case RecordOutcome::allowed: return record.allowed;
    case RecordOutcome::refused: return !record.allowed;
    case RecordOutcome::succeeded:
    case RecordOutcome::failed:
    case RecordOutcome::timed_out:
      return record.allowed && how_it_ended(record.ran, record.exit_code, record.timed_out) == outcome;
    case RecordOutcome::auth_rejected: return false;
  }
  return false;
}

bool selected(const ExecutionRecord& record, const HistoryQuery& query) noexcept {
  if (query.before_sequence != 0 && record.sequence >= query.before_sequence) return false;
  if (!query.twin_id.empty() && record.twin_id != query.twin_id) return false;
  if (!query.job_id.empty() && record.job_id != query.job_id) return false;
  return !query.outcome || matches(record, *query.outcome);
}

PageFiller::PageFiller(const HistoryQuery& query) noexcept
    : page_size_(std::clamp<std::size_t>(query.page_size, 1, max_page_size)), max_page_bytes_(query.max_page_bytes) {}

bool PageFiller::add(const ExecutionRecord& record) {
  const auto bytes = encoded_size_bound(record);
  const bool full = page_.records.size() == page_size_ ||
                    (!page_.records.empty() && page_bytes_ + bytes > max_page_bytes_);
  if (full) {  // one more exists: there is a next page
    page_.next_before = page_.records.back().sequence;
    return false;
  }
  page_.records.push_back(fitted(record, max_page_bytes_));  // alone too big: without its output
  page_bytes_ += encoded_size_bound(page_.records.back());
  return true;
}

History::History(std::size_t capacity, std::uint64_t output_budget_bytes)
    : slots_(capacity == 0 ? 1 : capacity), output_budget_(output_budget_bytes) {}

const ExecutionRecord& History::nth_newest(std::size_t i) const noexcept {
  return slots_[(next_ + slots_.size() - 1 - i) % slots_.size()];
}

Result<void> History::record(ExecutionRecord entry) {
  std::lock_guard lock(mutex_);
  auto& slot = slots_[next_];
  output_bytes_ -= std::min(output_bytes_, output_size(slot));  // the overwritten record's output goes too
  entry.sequence = ++sequence_;
  output_bytes_ += output_size(entry);
  slot = std::move(entry);
  next_ = (next_ + 1) % slots_.size();
  if (size_ < slots_.size()) ++size_;
  enforce_output_budget();
  return {};
}

// Drops the output of the oldest records until the budget holds. `trim_from_` only moves
// forward, so over time each record is trimmed at most once: O(1) amortized per insertion.
void History::enforce_output_budget() {
  const std::uint64_t oldest = sequence_ - size_ + 1;
  trim_from_ = std::max(trim_from_, oldest);
  while (output_bytes_ > output_budget_ && trim_from_ <= sequence_) {
    auto& record = slots_[(next_ + slots_.size() - 1 - (sequence_ - trim_from_)) % slots_.size()];
    const auto bytes = output_size(record);
    if (bytes > 0) {
      record.out.lines.clear();
      record.err.lines.clear();
      record.output_dropped = true;
      output_bytes_ -= std::min(output_bytes_, bytes);
    }
    ++trim_from_;
  }
}

std::vector<ExecutionRecord> History::newest_first(std::size_t limit) const {
  std::lock_guard lock(mutex_);
  std::vector<ExecutionRecord> out;
  const std::size_t n = std::min(limit, size_);
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) out.push_back(nth_newest(i));
  return out;
}

Result<HistoryPage> History::query(const HistoryQuery& query) const {
  std::lock_guard lock(mutex_);
  PageFiller filler(query);
  for (std::size_t i = 0; i < size_; ++i) {
    const auto& record = nth_newest(i);
    if (selected(record, query) && !filler.add(record)) break;
  }
  return filler.take();
}

Result<std::optional<ExecutionRecord>> History::find(const std::string& execution_id) const {
  std::lock_guard lock(mutex_);
  for (std::size_t i = 0; i < size_; ++i) {
    if (nth_newest(i).execution_id == execution_id) return nth_newest(i);
  }
  return std::nullopt;
}

StoreHealth History::health() const {
  return {.healthy = true, .detail = "memory (" + std::to_string(slots_.size()) + " records)"};
}

std::size_t History::size() const {
  std::lock_guard lock(mutex_);
  return size_;
}

}  // namespace pagi_exec
