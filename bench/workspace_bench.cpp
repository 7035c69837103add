// SPDX-License-Identifier: Apache-2.0
// What metering a workspace costs: measure_tree over N files, and file_write with and without a quota.
// Usage: workspace_bench [FILES] [ROUNDS]     (--help says more)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <pagi_exec/pagi_exec.hpp>

#include "sys/disk_usage.hpp"

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* usage = R"(usage: workspace_bench [FILES] [ROUNDS]

Makes a workspace of FILES small files in 100 folders (default 10000) and prints the p50 time of
measuring it (measure_tree, ROUNDS times, default 20), then of file_write through the library
without a workspace quota and with a 1 GiB one (5 x ROUNDS writes each).

  --help   this text
)";

// A positive count from argv[i], `fallback` when absent, 0 when not a number from 1 to 10000000.
int count_at(int argc, char** argv, int i, int fallback) {
  if (argc <= i) return fallback;
  char* end = nullptr;
  const long n = std::strtol(argv[i], &end, 10);
  return *end == '\0' && n >= 1 && n <= 10'000'000 ? static_cast<int>(n) : 0;
}

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

pagi_exec::Executor executor(const std::filesystem::path& root, std::uint64_t quota) {
  auto sandbox = pagi_exec::Sandbox::make({.root_dir = root, .limits = {.workspace_bytes = quota}});
  auto made = pagi_exec::Executor::open({.policy = pagi_exec::Policy::seed_default(), .sandbox = *sandbox});
  if (!made) std::abort();
  return *made;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
    std::fputs(usage, stdout);
    return 0;
  }
  const int files = count_at(argc, argv, 1, 10'000);
  const int rounds = count_at(argc, argv, 2, 20);
  if (files == 0 || rounds == 0 || argc > 3) {
    std::fprintf(stderr, "workspace_bench: FILES and ROUNDS must be positive numbers\n%s", usage);
    return 2;
  }
  const auto root = std::filesystem::temp_directory_path() / ("workspace-bench-" + std::to_string(::getpid()));
  const auto ws = root / "twin-sentinel";
  // 100 folders of files/100 small files each, as a source tree might look.
  for (int i = 0; i < files; ++i) {
    const auto dir = ws / ("d" + std::to_string(i % 100));
    if (i < 100) std::filesystem::create_directories(dir);
    std::ofstream(dir / ("f" + std::to_string(i))) << "content of file " << i << "\n";
  }
  std::vector<double> walk;
  std::uint64_t bytes = 0;
  for (int r = 0; r < rounds; ++r) {
    const auto t0 = Clock::now();
    const auto usage = pagi_exec::sys::measure_tree(ws);
    walk.push_back(ms_since(t0));
    if (!usage) return 1;
    bytes = usage->bytes;
  }
  std::printf("measure_tree, %d files in 100 folders (%llu KiB): p50 %.2f ms\n", files,
              static_cast<unsigned long long>(bytes / 1024), median(walk));
  for (const std::uint64_t quota : {std::uint64_t{0}, std::uint64_t{1} << 30}) {
    const auto e = executor(root, quota);
    std::vector<double> writes;
    for (int r = 0; r < rounds * 5; ++r) {
      const auto t0 = Clock::now();
      const auto out = e.run({.tool = "file_write", .args = {"note.txt", "some content\n"}, .twin_id = "twin-sentinel"});
      writes.push_back(ms_since(t0));
      if (!out || !out->success()) return 1;
    }
    std::printf("file_write (quota %s): first %.2f ms, p50 %.3f ms\n", quota == 0 ? "none" : "1 GiB", writes.front(),
                median(writes));
  }
  std::filesystem::remove_all(root);
  return 0;
}
