// SPDX-License-Identifier: Apache-2.0
// WorkspaceMeter: a per-twin cache of sys::measure_tree, kept current by file_write's own changes.
#include "workspace_meter.hpp"

#include <algorithm>

#include "sys/disk_usage.hpp"
#include "sys/workspace.hpp"

namespace pagi_exec {

namespace detail {
namespace {

std::string describe_refused_write(const WorkspaceUsage& now, std::uint64_t after) {
  return "file_write refused: the workspace would hold " + describe_size(after) + ", over its quota of " +
         describe_size(now.quota_bytes) + " (" + describe_size(now.bytes) + " used now); free space first: "
         "shrink files with file_write <path> \"\" (a write that does not grow the workspace is always "
         "accepted), or ask the operator to remove files from the twin's workspace";
}

}  // namespace

std::shared_ptr<WorkspaceMeter::Twin> WorkspaceMeter::twin(const std::string& id) {
  const std::lock_guard lock(mutex_);
  auto& slot = twins_[id];
  if (!slot) slot = std::make_shared<Twin>();
  return slot;
}

Result<WorkspaceUsage> WorkspaceMeter::measure(const std::string& id, Twin& twin, std::uint64_t quota_bytes) {
  std::set<std::string> skip;
  std::uint64_t generation = 0;
  {
    const std::lock_guard lock(mutex_);
    skip = twin.skip;
    generation = twin.generation;
    ++measurements_;
  }
  const auto measured = sys::measure_tree(root_ / id, skip);
  if (!measured) {
    return tl::unexpected(Error{Errc::io, measured.error().sys_errno,
                                "cannot measure the workspace of " + id + ": " + measured.error().context});
  }
  const WorkspaceUsage usage{.bytes = measured->bytes, .entries = measured->entries, .quota_bytes = quota_bytes};
  const std::lock_guard lock(mutex_);
  twin.usage = usage;
  twin.measured = true;
  twin.measured_at = generation;
  // A command that started or ended meanwhile may have changed what we counted.
  twin.current = twin.commands == 0 && twin.generation == generation;
  return usage;
}

Result<WorkspaceUsage> WorkspaceMeter::known_or_measure(const std::string& id, Twin& twin, std::uint64_t quota_bytes) {
  {
    const std::lock_guard lock(mutex_);
    if (twin.current) {
      twin.usage.quota_bytes = quota_bytes;  // a reloaded policy may have changed it
      return twin.usage;
    }
  }
  return measure(id, twin, quota_bytes);
}

Result<WorkspaceUsage> WorkspaceMeter::usage(const std::string& id, std::uint64_t quota_bytes) {
  const auto entry = twin(id);
  const std::lock_guard writing(entry->writing);
  return known_or_measure(id, *entry, quota_bytes);
}

Result<QuotaWrite> WorkspaceMeter::write(const std::string& id, std::string_view relative, std::string_view content,
                                         std::uint64_t quota_bytes, const std::optional<Credentials>& owner) {
  const auto unmetered = [&](const sys::FileWrite&) -> Result<void> { return {}; };
  if (quota_bytes == 0) {
    auto written = sys::write_file_beneath(root_, id, relative, content, unmetered, owner);
    return written.map([](const sys::FileWrite& change) {
      return QuotaWrite{.refused = false, .reason = {}, .written = change.written, .usage = {}};
    });
  }
  const auto entry = twin(id);
  const std::lock_guard writing(entry->writing);
  std::uint64_t generation = 0;
  {
    const std::lock_guard lock(mutex_);
    generation = entry->generation;
  }
  const auto now = known_or_measure(id, *entry, quota_bytes);
  if (!now) {
    return QuotaWrite{.refused = true, .reason = "file_write refused: " + now.error().message(), .written = 0, .usage = {}};
  }
  const auto after = [&](const sys::FileWrite& change) {
    return now->bytes - std::min(change.replaced_bytes, now->bytes) + change.new_bytes + change.folder_bytes;
  };
  std::string refusal;
  const auto admit = [&](const sys::FileWrite& change) -> Result<void> {
    const auto total = after(change);
    if (total <= quota_bytes || total <= now->bytes) return {};
    refusal = describe_refused_write(*now, total);
    return fail(Errc::invalid_request, refusal);
  };
  auto written = sys::write_file_beneath(root_, id, relative, content, admit, owner);
  if (!written && !refusal.empty()) return QuotaWrite{.refused = true, .reason = refusal, .written = 0, .usage = *now};
  if (!written) return error_of(written);
  WorkspaceUsage usage{.bytes = after(*written), .entries = now->entries + written->entries_added,
                       .quota_bytes = quota_bytes};
  const std::lock_guard lock(mutex_);
  if (entry->generation == generation && entry->commands == 0) {
    entry->usage = usage;  // exact but for the parent folder growing by a block now and then
  } else {
    entry->current = false;  // a command is writing too: measure next time
  }
  return QuotaWrite{.refused = false, .reason = {}, .written = written->written, .usage = usage};
}

void WorkspaceMeter::command_started(const std::string& id, const std::string& working_folder) {
  const auto entry = twin(id);
  const std::lock_guard lock(mutex_);
  ++entry->commands;
  ++entry->generation;
  entry->current = false;
  if (!working_folder.empty()) entry->skip.insert(working_folder);
}

Result<WorkspaceUsage> WorkspaceMeter::command_finished(const std::string& id, std::uint64_t quota_bytes) {
  const auto entry = twin(id);
  std::uint64_t ended = 0;
  {
    const std::lock_guard lock(mutex_);
    --entry->commands;
    ended = ++entry->generation;
  }
  const std::lock_guard writing(entry->writing);
  {
    // Whoever measured while we waited for the lock, starting after this command ended, saw
    // the disk as it left it: under load one walk then answers every command it waited behind.
    const std::lock_guard lock(mutex_);
    if (entry->measured && entry->measured_at >= ended) {
      entry->usage.quota_bytes = quota_bytes;
      return entry->usage;
    }
  }
  return measure(id, *entry, quota_bytes);
}

void WorkspaceMeter::working_folder_removed(const std::string& id, const std::string& working_folder) {
  const std::lock_guard lock(mutex_);
  if (const auto found = twins_.find(id); found != twins_.end()) found->second->skip.erase(working_folder);
}

std::uint64_t WorkspaceMeter::measurements() const {
  const std::lock_guard lock(mutex_);
  return measurements_;
}

std::vector<TwinWorkspace> WorkspaceMeter::snapshot() const {
  std::vector<TwinWorkspace> out;
  {
    const std::lock_guard lock(mutex_);
    for (const auto& [id, entry] : twins_) {
      if (entry->measured) out.push_back({id, entry->usage});
    }
  }
  std::sort(out.begin(), out.end(), [](const TwinWorkspace& a, const TwinWorkspace& b) {
    if (a.usage.over_quota() != b.usage.over_quota()) return a.usage.over_quota();
    return a.usage.bytes > b.usage.bytes;
  });
  return out;
}

}  // namespace detail
}  // namespace pagi_exec
