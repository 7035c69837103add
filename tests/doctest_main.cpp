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

int main(int argc, char** argv) {
  if (const char* wanted = std::getenv("PAGI_EXEC_TEST_SPAWN_HELPER"); wanted != nullptr && std::string_view(wanted) == "1") {
    if (auto started = pagi_exec::start_spawn_helper(); !started) {
      std::fprintf(stderr, "cannot start the spawn helper: %s\n", started.error().message().c_str());
      return 1;
    }
  }
  doctest::Context context(argc, argv);
  return context.run();
}
