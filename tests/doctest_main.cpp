// SPDX-License-Identifier: Apache-2.0
// The doctest main, compiled once and linked into every test executable. With
// PAGI_EXEC_TEST_SPAWN_HELPER=1 (the `<name>_via_helper` tests of tests/meson.build) it first
// starts the spawn helper, as the server's main() does, so every run of the binary goes through it.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <string_view>

#include <pagi_exec/spawner.hpp>

#include "sys/spawn_helper.hpp"

int main(int argc, char** argv) {
  if (const char* wanted = std::getenv("PAGI_EXEC_TEST_SPAWN_HELPER"); wanted != nullptr && std::string_view(wanted) == "1") {
    if (auto started = pagi_exec::start_spawn_helper(pagi_exec::spawner_program("")); !started) {
      std::fprintf(stderr, "cannot start the spawn helper: %s\n", started.error().message().c_str());
      return 1;
    }
  }
  doctest::Context context(argc, argv);
  const int status = context.run();
  // A binary meant to test the helper's path that never took it tested nothing new.
  if (const auto counts = pagi_exec::sys::spawn_counts();
      pagi_exec::sys::spawn_helper_pid() > 0 && counts.via_helper == 0 && counts.direct > 0) {
    std::fprintf(stderr, "the spawn helper was started but every run (%llu) was cloned directly\n",
                 static_cast<unsigned long long>(counts.direct));
    return 1;
  }
  return status;
}
