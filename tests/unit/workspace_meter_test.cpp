// SPDX-License-Identifier: Apache-2.0
// WorkspaceMeter at the end of commands: never a stale figure, and one walk for commands of a
// twin that end together.
#include <doctest/doctest.h>

#include <barrier>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"
#include "workspace_meter.hpp"

using pagi_exec::detail::WorkspaceMeter;

namespace {

constexpr std::uint64_t quota = 1ULL << 30;

void write_bytes(const std::filesystem::path& path, std::size_t size) {
  std::ofstream(path, std::ios::binary) << std::string(size, 'x');
}

}  // namespace

TEST_SUITE("workspace_meter") {
  TEST_CASE("a command that ends after another's measure started is measured again") {
    test_support::TempDir dir;
    const auto workspace = dir.path() / "twin-a";
    std::filesystem::create_directories(workspace);
    WorkspaceMeter meter(dir.path());
    meter.command_started("twin-a", "");
    meter.command_started("twin-a", "");
    write_bytes(workspace / "first", 100'000);
    const auto first = meter.command_finished("twin-a", quota);  // the other one is still writing
    REQUIRE(first);
    CHECK(first->bytes >= 100'000);
    write_bytes(workspace / "second", 200'000);
    const auto second = meter.command_finished("twin-a", quota);
    REQUIRE(second);
    CHECK(second->bytes >= 300'000);  // the first measure started before this end: not reused
    CHECK(meter.measurements() == 2);
    CHECK(meter.usage("twin-a", quota)->bytes == second->bytes);  // nothing runs: known, not walked
    CHECK(meter.measurements() == 2);
  }

  TEST_CASE("commands of one twin ending together all see the final workspace") {
    test_support::TempDir dir;
    const auto workspace = dir.path() / "twin-a";
    std::filesystem::create_directories(workspace / "tree");
    for (int i = 0; i < 2000; ++i) write_bytes(workspace / "tree" / std::to_string(i), 10);
    WorkspaceMeter meter(dir.path());
    constexpr int commands = 8;
    for (int i = 0; i < commands; ++i) meter.command_started("twin-a", "");
    write_bytes(workspace / "result", 500'000);
    std::barrier together(commands);
    std::vector<std::uint64_t> seen(commands);
    std::vector<std::thread> threads;
    for (int i = 0; i < commands; ++i) {
      threads.emplace_back([&, i] {
        together.arrive_and_wait();
        const auto usage = meter.command_finished("twin-a", quota);
        seen[static_cast<std::size_t>(i)] = usage ? usage->bytes : 0;
      });
    }
    for (auto& thread : threads) thread.join();
    const auto final_usage = meter.usage("twin-a", quota);
    REQUIRE(final_usage);
    for (const auto bytes : seen) CHECK(bytes == final_usage->bytes);
    CHECK(meter.measurements() >= 1);
    CHECK(meter.measurements() <= commands);
    MESSAGE(commands << " commands ending together took " << meter.measurements() << " walks");
  }
}
