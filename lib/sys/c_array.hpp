// SPDX-License-Identifier: Apache-2.0
// argv/envp-style arrays for execve, prepared before a clone (the child may not allocate).
#pragma once

#include <string>
#include <vector>

namespace pagi_exec::sys {

/// NULL-terminated char* array over strings the caller keeps alive (and does not change).
inline std::vector<const char*> c_array(const std::vector<std::string>& items) {
  std::vector<const char*> out;
  out.reserve(items.size() + 1);
  for (const auto& s : items) out.push_back(s.c_str());
  out.push_back(nullptr);
  return out;
}

}  // namespace pagi_exec::sys
