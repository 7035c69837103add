// SPDX-License-Identifier: Apache-2.0
// What the built-in file_write tool accepts as arguments, checked without touching anything.
#pragma once

#include <cstdint>
#include <string>

#include "pagi_exec/paths.hpp"
#include "pagi_exec/request.hpp"

namespace pagi_exec::detail {

/// Largest content file_write accepts.
inline constexpr std::uint64_t max_file_write_bytes = 16ULL * 1024 * 1024;

/// Why file_write cannot take `request.args`, or empty: not exactly 2 of them, a path that is not
/// workspace-relative (validate_workspace_path), content over max_file_write_bytes.
[[nodiscard]] inline std::string why_not_file_write(const Request& request) {
  if (request.args.size() != 2) {
    return "file_write needs exactly 2 arguments (a path relative to the twin's workspace, then the content); got " +
           std::to_string(request.args.size());
  }
  if (auto valid = validate_workspace_path(request.args[0]); !valid) return valid.error().message();
  if (request.args[1].size() > max_file_write_bytes) {
    return "file_write content is " + std::to_string(request.args[1].size()) + " bytes; the limit is " +
           std::to_string(max_file_write_bytes);
  }
  return {};
}

}  // namespace pagi_exec::detail
