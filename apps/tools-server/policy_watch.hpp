// SPDX-License-Identifier: Apache-2.0
// PolicyWatch: reloads the policy when its file changes, as Kubernetes changes a mounted ConfigMap.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string_view>

#include <pagi_exec/pagi_exec.hpp>

namespace tools_server {

/// What tells one version of a file from the next without reading it, the symlinks followed:
/// kubelet updates a ConfigMap volume by pointing its `..data` symlink at a new folder (another
/// inode), an editor writes in place (another mtime or size). `present` is false when the path
/// does not resolve, which is a version too (a reload then fails and keeps the policy).
struct FileIdentity {
  bool present = false;
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
  std::int64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::int64_t ctime_ns = 0;
  bool operator==(const FileIdentity&) const = default;
};

/// The identity of `path` as of now (stat(2), following symlinks).
[[nodiscard]] FileIdentity identify(const std::filesystem::path& path);

/// Watches the host's policy file (HostSettings::policy_file; none: watches nothing). The server
/// calls tick() once a second: a file whose identity differs from the one last loaded, and
/// that stayed the same for one tick (a write in progress is not read half-way), is loaded
/// again, the policy only, and logged as SIGHUP's reload with reason "file changed". A broken
/// file is reported once: it is not loaded again until it changes again. Not thread-safe: the
/// main thread's loop owns it.
class PolicyWatch {
 public:
  /// Takes the file's identity now: make it before Host::start loads the file, so that a change
  /// in between is seen.
  explicit PolicyWatch(std::filesystem::path file);

  /// Reloads when the file changed since the last load (see the class).
  void tick(pagi_exec::Host& host);

  /// SIGHUP's policy reload: loads the file now, whatever its identity, and logs it as before.
  void reload_now(pagi_exec::Host& host);

 private:
  // Loads the file, noting first the identity it is loaded at; the notices of Host::reload_policy.
  pagi_exec::Notices load(pagi_exec::Host& host, const FileIdentity& identity, std::string_view cause);

  std::filesystem::path file_;
  FileIdentity loaded_;                  // the identity of the version last loaded (or tried)
  std::optional<FileIdentity> changed_;  // a new identity seen at the last tick, not loaded yet
};

}  // namespace tools_server
