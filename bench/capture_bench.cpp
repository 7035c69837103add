// SPDX-License-Identifier: Apache-2.0
// capture_bench: how fast the library takes in a tool's output. A shell pipeline prints N MiB;
// the library runs it in cwd and captures it with the default caps (the first 32 KiB / 200 lines
// kept, the rest read and dropped), against the same pipeline ending in `cat > /dev/null`: the
// cheapest reader there is. One of each per round, interleaved.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <pagi_exec/pagi_exec.hpp>

#include "bench_setup.hpp"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* usage = R"(usage: capture_bench [--mib N] [--rounds N] [--json FILE]

Prints N MiB through a shell pipeline, captured by Executor::run (cwd, default output caps) and,
as the baseline, piped into `cat > /dev/null`; one of each per round. Prints the p50 time and
MB/s of each and the ratio library / cat (the issue's target: at least 0.5x).

  --mib N      MiB printed per run (default 256)
  --rounds N   interleaved rounds (default 5)
  --json FILE  also write every figure to FILE
  --help       this text
)";

// Runs `sh -c line` with the standard streams of this process and waits for it.
bool shell(const std::string& line) {
  const char* argv[] = {"/bin/sh", "-c", line.c_str(), nullptr};
  pid_t pid = 0;
  if (posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ) != 0) return false;
  int status = 0;
  return ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

double seconds_of(const std::function<bool()>& run) {
  const auto t0 = Clock::now();
  if (!run()) return -1;
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Options {
  long mib = 256;
  long rounds = 5;
  std::string json;
};

std::optional<long> number(const char* text, long most) {
  char* end = nullptr;
  const long n = std::strtol(text, &end, 10);
  if (*end != '\0' || n < 1 || n > most) return std::nullopt;
  return n;
}

std::optional<Options> parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(usage, stdout);
      std::exit(0);
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "capture_bench: unknown argument or missing value: '%s'\n%s", arg.c_str(), usage);
      return std::nullopt;
    }
    const char* value = argv[++i];
    if (arg == "--json") {
      options.json = value;
      continue;
    }
    const auto n = number(value, 1'000'000);
    if (!n || (arg != "--mib" && arg != "--rounds")) {
      std::fprintf(stderr, "capture_bench: bad argument '%s %s'\n%s", arg.c_str(), value, usage);
      return std::nullopt;
    }
    (arg == "--mib" ? options.mib : options.rounds) = *n;
  }
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  const auto options = parse(argc, argv);  // --help answers without starting anything
  if (!options) return 2;
  if (!bench::start_spawner("capture_bench")) return 1;
  const auto temp = bench::temp_root("capture_bench");
  if (!temp) return 1;
  const std::string& root = *temp;
  const auto sandbox = pagi_exec::Sandbox::make({.root_dir = root, .isolation = pagi_exec::Isolation::cwd});
  if (!sandbox) {
    std::fprintf(stderr, "capture_bench: %s\n", sandbox.error().message().c_str());
    return 1;
  }
  const auto executor = pagi_exec::Executor::open({.sandbox = *sandbox});
  if (!executor) {
    std::fprintf(stderr, "capture_bench: %s\n", executor.error().message().c_str());
    return 1;
  }
  const std::string bytes = std::to_string(options->mib * 1024 * 1024);
  struct Shape {
    const char* name;
    std::string producer;
  };
  const Shape shapes[] = {
      {"64-byte lines", "yes " + std::string(63, 'x') + " | head -c " + bytes},
      {"one line", "head -c " + bytes + " /dev/zero | tr '\\0' x"},
  };
  const double mb = static_cast<double>(options->mib) * 1024 * 1024 / 1e6;
  nlohmann::json report = {{"mib", options->mib}, {"rounds", options->rounds}, {"shapes", nlohmann::json::array()}};
  std::printf("capture throughput: %ld MiB per run, %ld interleaved rounds (p50)\n\n", options->mib, options->rounds);
  std::printf("%-14s %-26s %10s %10s %8s\n", "output", "reader", "seconds", "MB/s", "ratio");
  for (const auto& shape : shapes) {
    const pagi_exec::Request request{.tool = "command_exec", .args = {shape.producer}, .twin_id = "twin-aegis"};
    std::vector<double> cat;
    std::vector<double> library;
    std::size_t kept = 0;
    bool truncated = false;
    for (long r = 0; r < options->rounds; ++r) {
      cat.push_back(seconds_of([&] { return shell(shape.producer + " | cat > /dev/null"); }));
      library.push_back(seconds_of([&] {
        const auto outcome = executor->run(request);
        if (!outcome || !outcome->success() || outcome->out.total_bytes != std::stoull(bytes)) return false;
        kept = outcome->out.lines.size();
        truncated = outcome->out.truncated;
        return true;
      }));
      if (cat.back() < 0 || library.back() < 0) {
        std::fprintf(stderr, "capture_bench: a run of '%s' failed\n", shape.producer.c_str());
        return 1;
      }
    }
    const double cat_s = median(cat);
    const double library_s = median(library);
    std::printf("%-14s %-26s %10.3f %10.1f %8s\n", shape.name, "cat > /dev/null", cat_s, mb / cat_s, "1.00x");
    std::printf("%-14s %-26s %10.3f %10.1f %7.2fx\n", shape.name, "Executor::run (cwd)", library_s, mb / library_s,
                cat_s / library_s);
    report["shapes"].push_back({{"name", shape.name},
                                {"producer", shape.producer},
                                {"cat_seconds", cat_s},
                                {"cat_mb_per_s", mb / cat_s},
                                {"library_seconds", library_s},
                                {"library_mb_per_s", mb / library_s},
                                {"ratio", cat_s / library_s},
                                {"kept_lines", kept},
                                {"truncated", truncated}});
  }
  executor->wait_for_cleanup();
  std::error_code ec;
  std::filesystem::remove_all(root, ec);
  if (!options->json.empty()) {
    std::ofstream out(options->json);
    out << report.dump(2) << "\n";
    if (!out) {
      std::fprintf(stderr, "capture_bench: cannot write %s\n", options->json.c_str());
      return 1;
    }
  }
  return 0;
}
