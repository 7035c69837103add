// SPDX-License-Identifier: Apache-2.0
// Finding a bare program name in the sandbox's PATH, as execvp(3) would: for Command::make.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include <unistd.h>  // access(2): execute permission as the kernel grants it (uid, groups, noexec mounts)

namespace pagi_exec::detail {

/// The PATH every command gets, and that program names are resolved in.
inline constexpr const char* sandbox_path = "/usr/local/bin:/usr/bin:/bin";

/// How a program name resolved in a PATH.
struct PathLookup {
  enum class Found : std::uint8_t { executable, not_executable, missing };
  Found found = Found::missing;
  std::string path{};  ///< absolute path when found
};

/// Finds `name` (no '/') in the colon-separated `path_dirs` as execvp(3) would: the first
/// regular file with execute permission; if only non-executable files exist, not_executable.
/// Reads the file system (stat, access) and changes nothing. Thread-safe.
[[nodiscard]] inline PathLookup find_in_path(std::string_view name, std::string_view path_dirs) {
  PathLookup lookup;
  while (true) {
    const auto colon = path_dirs.find(':');
    const auto dir = path_dirs.substr(0, colon);
    if (!dir.empty()) {
      std::string candidate = std::string(dir) + "/" + std::string(name);
      std::error_code ec;  // stat(2) follows symlinks, as execve does
      if (std::filesystem::is_regular_file(candidate, ec)) {
        if (::access(candidate.c_str(), X_OK) == 0) return {PathLookup::Found::executable, candidate};
        if (lookup.found == PathLookup::Found::missing) lookup = {PathLookup::Found::not_executable, candidate};
      }
    }
    if (colon == std::string_view::npos) break;
    path_dirs.remove_prefix(colon + 1);
  }
  return lookup;
}

}  // namespace pagi_exec::detail
