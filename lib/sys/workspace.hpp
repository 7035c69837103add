// SPDX-License-Identifier: Apache-2.0
// Host-side file system work: sandbox and twin folders, per-execution folders, file_write,
// finding programs. Everything that touches a twin's folder refuses to follow symlinks, because
// commands of that twin may have planted them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pagi_exec/error.hpp"
#include "pagi_exec/spawner.hpp"
#include "pagi_exec/sandbox.hpp"

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

/// Creates `root/twin` if needed, for runs that mount it read-only (native, bwrap). A root server
/// makes it root:`reader_gid` 0750, so those runs (which hold that group) may read it and no
/// other host process may: native's `reader_gid` comes from native_workspace_group(), bwrap's is
/// the run gid. Anyone else keeps it 0700: its runs are its own uid in a user
/// namespace. Returns the folder. Errc::sandbox_setup.
[[nodiscard]] Result<std::filesystem::path> prepare_readonly_workspace(const std::filesystem::path& root,
                                                                     const std::string& twin, std::uint32_t reader_gid);

/// At start-up: gives every twin folder already in `root` the permissions of
/// prepare_readonly_workspace (folders of an older version were readable by host processes running
/// as nobody). Best effort: a folder it cannot fix is fixed on its twin's next run.
void close_native_workspaces(const std::filesystem::path& root, std::uint32_t reader_gid);

/// The group that may read twins' folders in native mode: the uid pool's first id when the
/// server runs as root with a pool (no host process holds it), else sandbox_gid.
[[nodiscard]] std::uint32_t native_workspace_group(const SandboxSpec& spec) noexcept;

/// Removes an execution folder and everything in it, without following symlinks: every step is
/// relative to an open directory (unlinkat, openat with O_NOFOLLOW), so a process of the same
/// uid that swaps a folder for a symlink meanwhile cannot redirect the removal (a path-based
/// remove_all could be: CVE-2022-21658). At most 256 levels deep. Best effort: returns the first
/// error but leaves no partial state that matters.
[[nodiscard]] Result<void> remove_tree(const std::filesystem::path& dir);

/// Removes `dir` if it is an empty folder (one rmdir: it never follows a symlink, and an empty
/// folder swapped in by a command is harmless to remove). True when it is gone (or was never
/// there); false when it holds something or is not a folder, for remove_tree to deal with.
[[nodiscard]] bool remove_if_empty(const std::filesystem::path& dir) noexcept;

/// What a file_write changes on disk, for the workspace's accounting.
struct FileWrite {
  std::uint64_t written = 0;         ///< content bytes written
  std::uint64_t replaced_bytes = 0;  ///< allocated bytes freed by replacing the old file (0: new, or linked elsewhere)
  std::uint64_t new_bytes = 0;       ///< allocated bytes of the new file (estimated, then measured)
  std::uint64_t folder_bytes = 0;    ///< allocated bytes of the folders created for it
  std::uint64_t entries_added = 0;   ///< folders created, plus the file when it is new
  bool estimated = true;             ///< new_bytes and folder_bytes are estimates (before writing)
};

/// Decides whether a write may go ahead; an error refuses it. Called twice: with estimates
/// before anything is created, then with the new file's real allocation before it replaces the
/// target.
using WriteAdmission = std::function<Result<void>(const FileWrite&)>;

/// Writes `content` to `relative` beneath `root/twin` (created if needed), creating missing
/// parent folders. Symlinks and ".." are refused at every step (openat2 RESOLVE_BENEATH |
/// RESOLVE_NO_SYMLINKS), so the write cannot leave the workspace. Only a regular file is ever
/// replaced: a FIFO, socket, device, folder or symlink at `relative` is refused without being
/// opened (so nothing blocks and no driver runs). The content goes to a fresh file (O_EXCL)
/// that is renamed over the target: a reader sees the old or the new file, never a half, and
/// another name of the old file (a hard link) keeps the old content. With `owner`, the twin's
/// folder, the folders made on the way and the file belong to that uid/gid (cwd: the twin's later
/// commands may change them); without, a replaced file keeps its old owner.
/// Errc::invalid_request for a path through a symlink or a non-directory, or a target that is
/// not a regular file; the error of `admit` when it refuses; Errc::io for other failures.
[[nodiscard]] Result<FileWrite> write_file_beneath(const std::filesystem::path& root, const std::string& twin,
                                                   std::string_view relative, std::string_view content,
                                                   const WriteAdmission& admit,
                                                   const std::optional<Credentials>& owner = std::nullopt);

/// What kind of file `mode` (st_mode) is: "a regular file", "a FIFO (named pipe)", "a socket"...
[[nodiscard]] const char* describe_file_type(unsigned mode) noexcept;

/// 0 when `path` is executable by us, else the errno of access(2).
[[nodiscard]] int executable_error(const std::filesystem::path& path);

/// 0 when we may create entries in the folder `path` (it exists, is searchable and writable, its
/// file system is not read-only), else the errno of access(2).
[[nodiscard]] int writable_folder_error(const std::filesystem::path& path);

}  // namespace pagi_exec::sys
