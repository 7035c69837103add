// SPDX-License-Identifier: Apache-2.0
// Per-execution latency of the isolation modes against raw fork+exec and the bubblewrap CLI,
// measured interleaved (one of each per round) so machine noise hits every variant alike.
// A variant that cannot run here (native or bwrap without root or namespaces) is skipped and
// says why; the others still run.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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

constexpr const char* usage = R"(usage: spawn_bench [--rounds N] [--json FILE] [ROUNDS]

Runs /bin/true and sh -c 'echo hi' through raw fork+exec (posix_spawn + reading the output: the
baseline), the bubblewrap CLI with the isolation closest to native's, and Executor::run in native
and cwd, one of each per round, and prints p50/p99 in ms and the ratios to fork+exec and bwrap.
Run as root for native and bwrap; a variant that cannot run is reported as skipped.

  --rounds N   interleaved rounds per workload (default 300; a bare number means the same)
  --json FILE  also write every figure to FILE
  --help       this text
)";

// Spawns argv with stdout and stderr on one pipe, reads it to EOF, waits: what any caller of a
// tool must at least do. The baseline every other variant is compared with.
bool spawn_and_wait(const std::vector<std::string>& args) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return false;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int err = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  char buf[4096];
  while (::read(fds[0], buf, sizeof buf) > 0) {}
  ::close(fds[0]);
  int status = 0;
  if (err == 0) ::waitpid(pid, &status, 0);
  return err == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// The bubblewrap CLI with the isolation closest to native's: all namespaces, read-only /usr,
// merged-/usr links, fresh /proc and /dev, tmpfs /tmp, the workspace bound, no capabilities.
std::vector<std::string> bwrap_argv(const std::string& workspace, std::vector<std::string> command) {
  std::vector<std::string> args{"/usr/bin/bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop",
                                "ALL", "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink",
                                "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/sbin", "/sbin",
                                "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/work",
                                "--ro-bind", workspace, "/workspace", "--chdir", "/work", "--"};
  args.insert(args.end(), command.begin(), command.end());
  return args;
}

struct Variant {
  std::string name;
  std::function<bool()> run;
  std::string skipped;  // why it cannot run here; empty when it runs
  std::vector<double> ms;
};

// The p-quantile by nearest rank; never called on an empty sample.
double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

// An executor in `isolation`, or why this machine cannot run one.
struct MadeExecutor {
  std::optional<pagi_exec::Executor> executor;
  std::string why_not;
};

MadeExecutor executor_for(const std::string& root, pagi_exec::Isolation isolation) {
  auto sandbox = pagi_exec::Sandbox::make({.root_dir = root, .isolation = isolation});
  if (!sandbox) return {std::nullopt, sandbox.error().message()};
  if (isolation != pagi_exec::Isolation::cwd) {
    if (auto works = pagi_exec::check_isolation(*sandbox); !works) return {std::nullopt, works.error().message()};
  }
  auto executor = pagi_exec::Executor::open({.sandbox = *sandbox});
  if (!executor) return {std::nullopt, executor.error().message()};
  return {std::move(*executor), {}};
}

struct Options {
  int rounds = 300;
  std::string json;
};

std::optional<Options> parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    char* end = nullptr;
    if (arg == "--help" || arg == "-h") {
      std::fputs(usage, stdout);
      std::exit(0);
    } else if (arg == "--json" && i + 1 < argc) {
      options.json = argv[++i];
    } else if ((arg == "--rounds" && i + 1 < argc) || (!arg.empty() && arg[0] != '-')) {
      const char* text = arg == "--rounds" ? argv[++i] : argv[i];
      const long n = std::strtol(text, &end, 10);
      if (*end != '\0' || n < 1 || n > 1'000'000) {
        std::fprintf(stderr, "spawn_bench: rounds must be a number from 1 to 1000000, not '%s'\n", text);
        return std::nullopt;
      }
      options.rounds = static_cast<int>(n);
    } else {
      std::fprintf(stderr, "spawn_bench: unknown argument '%s'\n%s", arg.c_str(), usage);
      return std::nullopt;
    }
  }
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  const auto options = parse(argc, argv);  // --help answers without starting anything
  if (!options) return 2;
  if (!bench::start_spawner("spawn_bench")) return 1;
  const auto temp = bench::temp_root("spawn_bench");
  if (!temp) return 1;
  const std::string& root = *temp;
  const auto native = executor_for(root, pagi_exec::Isolation::native);
  const auto cwd = executor_for(root, pagi_exec::Isolation::cwd);
  const std::string workspace = root + "/twin-aegis";
  std::filesystem::create_directories(workspace);
  std::string bwrap_skipped;
  if (::access("/usr/bin/bwrap", X_OK) != 0) {
    bwrap_skipped = "/usr/bin/bwrap is not installed";
  } else if (!spawn_and_wait(bwrap_argv(workspace, {"/bin/true"}))) {
    bwrap_skipped = "the bubblewrap CLI cannot make its namespaces here (not root?)";
  }

  struct Workload {
    const char* name;
    std::vector<std::string> argv;
    pagi_exec::Request request;
  };
  const Workload workloads[] = {
      {"/bin/true", {"/bin/true"}, {.tool = "/bin/true", .twin_id = "twin-aegis"}},
      {"sh -c 'echo hi'", {"/bin/sh", "-c", "echo hi"}, {.tool = "command_exec", .args = {"echo hi"}, .twin_id = "twin-aegis"}},
  };
  const auto run_with = [](const MadeExecutor& made, const pagi_exec::Request& request) {
    return [&made, &request] {
      auto o = made.executor->run(request);
      return o && o->success();
    };
  };
  nlohmann::json report = {{"rounds", options->rounds}, {"unit", "ms"}, {"workloads", nlohmann::json::array()}};
  std::printf("pagi-exec spawn benchmark: %d interleaved rounds per workload, latency in ms\n\n", options->rounds);
  std::printf("%-18s %-22s %8s %8s %8s %10s %10s\n", "workload", "variant", "p50", "p99", "p99/p50", "p50/fork",
              "p50/bwrap");
  for (const auto& w : workloads) {
    std::vector<Variant> variants;
    variants.push_back({"fork+exec (raw)", [&] { return spawn_and_wait(w.argv); }, {}, {}});
    variants.push_back({"bwrap CLI", [&] { return spawn_and_wait(bwrap_argv(workspace, w.argv)); }, bwrap_skipped, {}});
    variants.push_back({"pagi-exec native", run_with(native, w.request), native.why_not, {}});
    variants.push_back({"pagi-exec cwd", run_with(cwd, w.request), cwd.why_not, {}});
    for (auto& v : variants) {
      if (v.skipped.empty()) (void)v.run();  // warm-up: page cache, cgroup pool, lazy binding
    }
    for (int i = 0; i < options->rounds; ++i) {
      for (auto& v : variants) {
        if (!v.skipped.empty()) continue;
        const auto t0 = Clock::now();
        if (!v.run()) {
          std::fprintf(stderr, "spawn_bench: %s failed for %s\n", v.name.c_str(), w.name);
          return 1;
        }
        v.ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
    }
    const double fork_p50 = percentile(variants[0].ms, 0.5);
    const bool have_bwrap = variants[1].skipped.empty();
    const double bwrap_p50 = have_bwrap ? percentile(variants[1].ms, 0.5) : 0;
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& v : variants) {
      if (!v.skipped.empty()) {
        std::printf("%-18s %-22s SKIP: %s\n", w.name, v.name.c_str(), v.skipped.c_str());
        rows.push_back({{"name", v.name}, {"skipped", v.skipped}});
        continue;
      }
      const double p50 = percentile(v.ms, 0.5);
      const double p99 = percentile(v.ms, 0.99);
      char vs_bwrap[32] = "n/a";
      if (have_bwrap) std::snprintf(vs_bwrap, sizeof vs_bwrap, "%.2fx", p50 / bwrap_p50);
      std::printf("%-18s %-22s %8.3f %8.3f %8.2f %9.2fx %10s\n", w.name, v.name.c_str(), p50, p99, p99 / p50,
                  p50 / fork_p50, vs_bwrap);
      nlohmann::json row = {{"name", v.name},      {"samples", v.ms.size()},   {"p50", p50},
                            {"p99", p99},          {"max", *std::max_element(v.ms.begin(), v.ms.end())},
                            {"p50_vs_fork", p50 / fork_p50}};
      if (have_bwrap) row["p50_vs_bwrap"] = p50 / bwrap_p50;
      rows.push_back(row);
    }
    report["workloads"].push_back({{"name", w.name}, {"variants", rows}});
    std::printf("\n");
  }
  std::error_code ec;
  std::filesystem::remove_all(root, ec);
  if (!options->json.empty()) {
    std::ofstream out(options->json);
    out << report.dump(2) << "\n";
    if (!out) {
      std::fprintf(stderr, "spawn_bench: cannot write %s\n", options->json.c_str());
      return 1;
    }
  }
  return 0;
}
