// SPDX-License-Identifier: Apache-2.0
// Host-side file system work: sandbox and twin folders, per-execution folders, file_write,
// finding programs. Everything that touches a twin's folder refuses to follow symlinks, because
// commands of that twin may have planted them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "pagi_exec/error.hpp"
#include "pagi_exec/sandbox.hpp"

namespace pagi_exec::sys {

/// Creates `dir` (and its parents) if missing, with `mode` for the last one; fails when it is
/// not a directory. Errc::sandbox_setup.
[[nodiscard]] Result<void> ensure_directory(const std::filesystem::path& dir, unsigned mode);

/// Creates `root/twin` (0700) and `root/twin/execution_id` (0700), never through a symlink.
/// Returns the execution folder. Errc::sandbox_setup.
[[nodiscard]] Result<std::filesystem::path> make_execution_dir(const std::filesystem::path& root,
                                                               const std::string& twin,
                                                               const std::string& execution_id);

/// Creates `root/twin` if needed. A root server makes it root:`reader_gid` 0750, so native runs
/// (which hold that group) may read it and no other host process may: `reader_gid` comes from
/// native_workspace_group(). Anyone else keeps it 0700: its runs are its own uid in a user
/// namespace. Returns the folder. Errc::sandbox_setup.
[[nodiscard]] Result<std::filesystem::path> prepare_native_workspace(const std::filesystem::path& root,
                                                                     const std::string& twin, std::uint32_t reader_gid);

/// At start-up: gives every twin folder already in `root` the permissions of
/// prepare_native_workspace (folders of an older version were readable by host processes running
/// as nobody). Best effort: a folder it cannot fix is fixed on its twin's next run.
void close_native_workspaces(const std::filesystem::path& root, std::uint32_t reader_gid);

/// The group that may read twins' folders in native mode: the uid pool's first id when the
/// server runs as root with a pool (no host process holds it), else sandbox_gid.
[[nodiscard]] std::uint32_t native_workspace_group(const SandboxSpec& spec) noexcept;

/// Removes an execution folder and everything in it, without following symlinks. Best effort:
/// returns the error but leaves no partial state that matters.
[[nodiscard]] Result<void> remove_tree(const std::filesystem::path& dir);

/// Writes `content` to `relative` beneath `root/twin` (created if needed), creating missing
/// parent folders. Symlinks and ".." are refused at every step (openat2 RESOLVE_BENEATH |
/// RESOLVE_NO_SYMLINKS), so the write cannot leave the workspace. Returns the bytes written.
/// Errc::invalid_request for a path that leads through a symlink or a non-directory;
/// Errc::io for other failures.
[[nodiscard]] Result<std::uint64_t> write_file_beneath(const std::filesystem::path& root,
                                                       const std::string& twin,
                                                       std::string_view relative,
                                                       std::string_view content);

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
