// SPDX-License-Identifier: Apache-2.0
// Names that become paths: twin ids (one folder name) and workspace-relative file paths.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "pagi_exec/error.hpp"

namespace pagi_exec {

/// Longest twin id accepted; a twin id becomes one directory name.
inline constexpr std::size_t max_twin_id_length = 128;

/// Why `name` cannot be one path component, or an empty string when it can. A safe component is
/// non-empty, at most max_twin_id_length bytes, and has no '/', NUL, control character (< 0x20,
/// 0x7f), leading '-' (which tools would read as an option) or leading '.' (".", ".." and the
/// sandbox's own hidden folders). Thread-safe.
[[nodiscard]] inline std::string why_not_path_component(std::string_view name) {
  if (name.empty()) return "is empty";
  if (name.size() > max_twin_id_length) {
    return "is longer than " + std::to_string(max_twin_id_length) + " bytes";
  }
  if (name.front() == '.') return "starts with '.'";
  if (name.front() == '-') return "starts with '-'";
  for (const char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '/') return "contains '/'";
    if (u < 0x20 || u == 0x7f) return "contains a control character";
  }
  return {};
}

/// Ok when `twin_id` can name the twin's workspace folder; Errc::invalid_request otherwise,
/// with a message saying what is wrong and what is allowed.
[[nodiscard]] inline Result<void> validate_twin_id(std::string_view twin_id) {
  const auto why = why_not_path_component(twin_id);
  if (why.empty()) return {};
  return fail(Errc::invalid_request,
              "twin_id " + why + "; a twin id must be one path component: 1-" +
                  std::to_string(max_twin_id_length) +
                  " bytes, no '/', NUL or control characters, not starting with '.' or '-'");
}

/// Longest workspace-relative path accepted by file_write.
inline constexpr std::size_t max_workspace_path_length = 1024;

/// Ok when `path` is a relative path that stays inside a workspace by its spelling alone: not
/// empty, not absolute, no "." / ".." / empty component, no NUL or control character, at most
/// max_workspace_path_length bytes, components at most 255 bytes. (Symlinks are refused when the
/// file is opened: see file_write.) Errc::invalid_request with the reason otherwise.
[[nodiscard]] inline Result<void> validate_workspace_path(std::string_view path) {
  const auto refuse = [&](const std::string& why) {
    return fail(Errc::invalid_request, "path '" + std::string(path) + "' " + why +
                                           "; give a path relative to the twin's workspace, "
                                           "without '.' or '..' components");
  };
  if (path.empty()) return refuse("is empty");
  if (path.size() > max_workspace_path_length) return refuse("is too long");
  if (path.front() == '/') return refuse("is absolute");
  std::size_t start = 0;
  while (start <= path.size()) {
    auto end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const auto part = path.substr(start, end - start);
    if (part.empty()) return refuse("has an empty component");
    if (part == "." || part == "..") return refuse("has a '" + std::string(part) + "' component");
    if (part.size() > 255) return refuse("has a component longer than 255 bytes");
    for (const char c : part) {
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u == 0x7f) return refuse("contains a control character");
    }
    start = end + 1;
  }
  return {};
}

}  // namespace pagi_exec
