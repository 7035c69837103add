// SPDX-License-Identifier: Apache-2.0
// Per-execution latency of the isolation modes against raw fork+exec and the bubblewrap CLI,
// measured interleaved (one of each per round) so machine noise hits every variant alike.
//
//   build/bench/spawn_bench [rounds]      (default 300; run as root for native)
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <pagi_exec/pagi_exec.hpp>

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

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
  std::vector<double> ms;
};

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

pagi_exec::Executor executor_for(const std::string& root, pagi_exec::Isolation isolation) {
  auto sandbox = pagi_exec::Sandbox::make({.root_dir = root, .isolation = isolation});
  if (!sandbox) std::abort();
  auto executor = pagi_exec::Executor::open({.sandbox = *sandbox});
  if (!executor) {
    std::fprintf(stderr, "cannot make %s executor: %s\n", to_string(isolation), executor.error().message().c_str());
    std::exit(77);
  }
  return *executor;
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 300;
  char root_template[] = "/tmp/pagi-exec-bench-XXXXXX";
  const std::string root = ::mkdtemp(root_template);
  const auto native = executor_for(root, pagi_exec::Isolation::native);
  const auto cwd = executor_for(root, pagi_exec::Isolation::cwd);
  const std::string workspace = root + "/twin-aegis";
  const bool have_bwrap = ::access("/usr/bin/bwrap", X_OK) == 0;

  struct Workload {
    const char* name;
    std::vector<std::string> argv;
    pagi_exec::Request request;
  };
  const Workload workloads[] = {
      {"/bin/true", {"/bin/true"}, {.tool = "/bin/true", .twin_id = "twin-aegis"}},
      {"sh -c 'echo hi'", {"/bin/sh", "-c", "echo hi"}, {.tool = "command_exec", .args = {"echo hi"}, .twin_id = "twin-aegis"}},
  };
  std::printf("pagi-exec spawn benchmark: %d interleaved rounds per workload, latency in ms\n\n", rounds);
  std::printf("%-18s %-22s %8s %8s %12s %12s\n", "workload", "variant", "p50", "p99", "p50/fork", "p50/bwrap");
  for (const auto& w : workloads) {
    std::vector<Variant> variants;
    variants.push_back({"fork+exec (raw)", [&] { return spawn_and_wait(w.argv); }, {}});
    if (have_bwrap) variants.push_back({"bwrap CLI", [&] { return spawn_and_wait(bwrap_argv(workspace, w.argv)); }, {}});
    variants.push_back({"pagi-exec native", [&] {
                          auto o = native.run(w.request);
                          return o && o->success();
                        }, {}});
    variants.push_back({"pagi-exec cwd", [&] {
                          auto o = cwd.run(w.request);
                          return o && o->success();
                        }, {}});
    for (auto& v : variants) (void)v.run();  // warm-up: page cache, cgroup pool, lazy binding
    for (int i = 0; i < rounds; ++i) {
      for (auto& v : variants) {
        const auto t0 = Clock::now();
        if (!v.run()) {
          std::fprintf(stderr, "%s failed for %s\n", v.name.c_str(), w.name);
          return 1;
        }
        v.ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
    }
    const double fork_p50 = percentile(variants[0].ms, 0.5);
    const double bwrap_p50 = have_bwrap ? percentile(variants[1].ms, 0.5) : 0;
    for (const auto& v : variants) {
      const double p50 = percentile(v.ms, 0.5);
      std::printf("%-18s %-22s %8.3f %8.3f %11.2fx %11s\n", w.name, v.name.c_str(), p50, percentile(v.ms, 0.99),
                  p50 / fork_p50, have_bwrap ? (std::to_string(p50 / bwrap_p50).substr(0, 4) + "x").c_str() : "n/a");
    }
    std::printf("\n");
  }
  std::error_code ec;
  std::filesystem::remove_all(root, ec);
  return 0;
}
