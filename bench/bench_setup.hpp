// SPDX-License-Identifier: Apache-2.0
// What the library benchmarks do first: clone runs as the hosts do, in a folder of their own.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include <pagi_exec/spawner.hpp>

namespace bench {

/// Starts the spawn helper as the hosts do (runs are cloned from the pagi-spawner program, never
/// from this process); says why not on stderr. Call it first thing in main().
inline bool start_spawner(const char* program) {
  auto helper = pagi_exec::start_spawn_helper(pagi_exec::spawner_program(PAGI_EXEC_SPAWNER_PATH));
  if (!helper) std::fprintf(stderr, "%s: %s\n", program, helper.error().message().c_str());
  return helper.has_value();
}

/// A fresh folder under /tmp for the benchmark's sandbox; says why not on stderr.
inline std::optional<std::string> temp_root(const char* program) {
  std::string pattern = std::string("/tmp/pagi-exec-") + program + "-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    std::perror((std::string(program) + ": mkdtemp").c_str());
    return std::nullopt;
  }
  return pattern;
}

}  // namespace bench
