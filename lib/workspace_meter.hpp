// SPDX-License-Identifier: Apache-2.0
// WorkspaceMeter: what each twin's workspace occupies on disk, and file_write under its quota.
#pragma once

#include <cstdint>
#include <optional>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "pagi_exec/error.hpp"
#include "pagi_exec/outcome.hpp"
#include "pagi_exec/spawner.hpp"

namespace pagi_exec::detail {

/// A file_write's result under the quota: written, or refused with a reason the twin can act on.
struct QuotaWrite {
  bool refused = false;
  std::string reason;        ///< when refused: used, quota, how to free space
  std::uint64_t written = 0; ///< content bytes, when written
  WorkspaceUsage usage;      ///< the workspace after the write (or as it stays, when refused)
};

/// Knows each twin's workspace usage and keeps it current: file_write updates it by what it
/// changed; a command that can write the workspace makes it unknown until it ends, when the
/// workspace is measured again (sys::measure_tree). Working folders of executions (inside the
/// workspace in cwd and bwrap) are left out: they are removed after the run.
/// Thread-safe. Per twin, measuring and writing are serialised, so two file_writes cannot both
/// fit under a quota that only holds one.
class WorkspaceMeter {
 public:
  explicit WorkspaceMeter(std::filesystem::path root) : root_(std::move(root)) {}

  /// The twin's workspace with `quota_bytes`, measured unless known. Errc::io when it cannot be
  /// measured (e.g. folders nested deeper than sys::max_measured_depth).
  [[nodiscard]] Result<WorkspaceUsage> usage(const std::string& twin, std::uint64_t quota_bytes);

  /// Writes like sys::write_file_beneath, refusing a write that would take the workspace over
  /// `quota_bytes` (0: no quota, nothing measured). A write that does not grow the workspace is
  /// accepted even over the quota: it is how a twin gets back under. Errors of the write itself
  /// (a symlink, a FIFO...) are errors; a quota refusal is QuotaWrite::refused.
  [[nodiscard]] Result<QuotaWrite> write(const std::string& twin, std::string_view relative, std::string_view content,
                                         std::uint64_t quota_bytes,
                                         const std::optional<Credentials>& owner = std::nullopt);

  /// A command that can write the twin's workspace starts; `working_folder` (a name in the
  /// workspace, or empty) is left out of measures until working_folder_removed().
  void command_started(const std::string& twin, const std::string& working_folder);
  /// It ended: measures the workspace again, unless a measure that started after it ended has
  /// finished meanwhile (commands of one twin ending together then share one walk of the tree).
  [[nodiscard]] Result<WorkspaceUsage> command_finished(const std::string& twin, std::uint64_t quota_bytes);
  /// The working folder is gone.
  void working_folder_removed(const std::string& twin, const std::string& working_folder);

  /// Every twin measured since start: over quota first, then largest first. Never touches the disk.
  [[nodiscard]] std::vector<TwinWorkspace> snapshot() const;
  /// How many times a workspace was walked (sys::measure_tree), for tests and benchmarks.
  [[nodiscard]] std::uint64_t measurements() const;

 private:
  struct Twin {
    std::mutex writing;  // held while measuring or writing this twin's workspace
    // The rest is guarded by WorkspaceMeter::mutex_.
    WorkspaceUsage usage;
    bool measured = false;         // usage was measured at least once
    bool current = false;          // usage matches the disk: no command has written since
    unsigned commands = 0;         // running commands that can write the workspace
    std::uint64_t generation = 0;  // changes whenever a command starts or ends
    std::uint64_t measured_at = 0; // the generation when the last measure started
    std::set<std::string> skip;    // working folders left out of measures
  };
  std::shared_ptr<Twin> twin(const std::string& id);
  Result<WorkspaceUsage> measure(const std::string& id, Twin& twin, std::uint64_t quota_bytes);  // holds twin.writing
  Result<WorkspaceUsage> known_or_measure(const std::string& id, Twin& twin, std::uint64_t quota_bytes);

  std::filesystem::path root_;
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Twin>> twins_;
  std::uint64_t measurements_ = 0;
};

}  // namespace pagi_exec::detail
