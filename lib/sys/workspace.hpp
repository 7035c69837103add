// SPDX-License-Identifier: Apache-2.0
// Host-side file system work: sandbox and twin folders, per-execution folders, file_write,
// finding programs. Everything that touches a twin's folder refuses to follow symlinks, because
// commands of that twin may have planted them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pagi_exec/error.hpp"
#include "pagi_exec/spawner.hpp"

namespace pagi_exec::sys {

/// Creates `dir` (and its parents) if missing, with `mode` for the last one; fails when it is
/// not a directory. Errc::sandbox_setup.
[[nodiscard]] Result<void> ensure_directory(const std::filesystem::path& dir, unsigned mode);

/// Errc::sandbox_setup, naming the folder and its mode, when a process of `who` (no
/// supplementary groups) could not reach `dir`: some folder on the way lacks search permission
/// for it. Commands that drop to that uid must reach the sandbox dir.
[[nodiscard]] Result<void> check_reachable(const std::filesystem::path& dir, const Credentials& who);

/// Creates `root/twin` (0700) and `root/twin/execution_id` (0700), never through a symlink, and
/// gives both to `owner` when set (the uid cwd commands run as: they write there). Returns the
/// execution folder. Errc::sandbox_setup.
[[nodiscard]] Result<std::filesystem::path> make_execution_dir(const std::filesystem::path& root,
                                                               const std::string& twin,
                                                               const std::string& execution_id,
                                                               const std::optional<Credentials>& owner = std::nullopt);

/// Creates `root/twin` (0700) if needed, never through a symlink. Returns it. Errc::sandbox_setup.
[[nodiscard]] Result<std::filesystem::path> make_twin_dir(const std::filesystem::path& root, const std::string& twin);

/// Creates `root/twin` if needed and lets group `gid` (the native sandbox's) read it: mode
/// 0750. Returns the folder. Errc::sandbox_setup.
[[nodiscard]] Result<std::filesystem::path> prepare_native_workspace(const std::filesystem::path& root,
                                                                     const std::string& twin, std::uint32_t gid);

/// Removes an execution folder and everything in it, without following symlinks: every step is
/// relative to an open directory (unlinkat, openat with O_NOFOLLOW), so a process of the same
/// uid that swaps a folder for a symlink meanwhile cannot redirect the removal (a path-based
/// remove_all could be: CVE-2022-21658). At most 256 levels deep. Best effort: returns the first
/// error but leaves no partial state that matters.
[[nodiscard]] Result<void> remove_tree(const std::filesystem::path& dir);

/// Writes `content` to `relative` beneath `root/twin` (created if needed), creating missing
/// parent folders. Symlinks and ".." are refused at every step (openat2 RESOLVE_BENEATH |
/// RESOLVE_NO_SYMLINKS), so the write cannot leave the workspace. An existing file with other
/// hard links is refused (it may be a file outside the workspace). With `owner` the file and the
/// folders on its way belong to that uid/gid (cwd: the twin's later commands may change them).
/// Returns the bytes written.
/// Errc::invalid_request for a path that leads through a symlink or a non-directory;
/// Errc::io for other failures.
[[nodiscard]] Result<std::uint64_t> write_file_beneath(const std::filesystem::path& root,
                                                       const std::string& twin,
                                                       std::string_view relative,
                                                       std::string_view content,
                                                       const std::optional<Credentials>& owner = std::nullopt);

/// 0 when `path` is executable by us, else the errno of access(2).
[[nodiscard]] int executable_error(const std::filesystem::path& path);

/// How a program name resolved.
struct ProgramLookup {
  enum class Found : std::uint8_t { executable, not_executable, missing };
  Found found = Found::missing;
  std::string path;  ///< absolute path when found
};

/// Finds `name` (no '/') in the colon-separated `path_dirs` as execvp(3) would: the first
/// regular file with execute permission; if only non-executable files exist, not_executable.
[[nodiscard]] ProgramLookup find_program(std::string_view name, std::string_view path_dirs);

}  // namespace pagi_exec::sys
