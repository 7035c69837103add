// SPDX-License-Identifier: Apache-2.0
// Measuring what a folder tree occupies on disk, without following symlinks.
#pragma once

#include <cstdint>
#include <filesystem>
#include <set>
#include <string>

#include "pagi_exec/error.hpp"

namespace pagi_exec::sys {

/// What a tree occupies: allocated bytes (st_blocks * 512, as du(1) counts them; a hard-linked
/// file once) and the number of entries (files, folders, links, FIFOs...), the root included.
struct TreeUsage {
  std::uint64_t bytes = 0;
  std::uint64_t entries = 0;
};

/// Deepest folder nesting measure_tree descends into (one descriptor per level).
inline constexpr unsigned max_measured_depth = 256;

/// Walks `dir` with openat/fstatat, never following a symlink or crossing a mount, and adds up
/// what it holds. Top-level entries named in `skip` are left out (execution folders that are
/// about to be removed). A missing `dir` is empty. Errc::io when a folder cannot be read or the
/// tree nests deeper than max_measured_depth.
[[nodiscard]] Result<TreeUsage> measure_tree(const std::filesystem::path& dir, const std::set<std::string>& skip = {});

}  // namespace pagi_exec::sys
