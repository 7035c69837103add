// SPDX-License-Identifier: Apache-2.0
// Test helpers: temporary folders, executors on them, process probes.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <pagi_exec/pagi_exec.hpp>

namespace test_support {

/// A fresh folder under the system temp dir, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "pagi-exec-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// An executor with the seed policy over `root`, or aborts (tests cannot go on without one).
inline pagi_exec::Executor make_executor(const std::filesystem::path& root,
                                         pagi_exec::Isolation isolation = pagi_exec::Isolation::cwd,
                                         std::chrono::milliseconds timeout = std::chrono::seconds(10),
                                         pagi_exec::OutputCaps caps = {}) {
  auto sandbox = pagi_exec::Sandbox::make({.root_dir = root,
                                           .isolation = isolation,
                                           .limits = {.timeout = timeout, .output = caps}});
  if (!sandbox) std::abort();
  auto executor = pagi_exec::Executor::make({.policy = pagi_exec::Policy::seed_default(), .sandbox = *sandbox});
  if (!executor) std::abort();
  return *executor;
}

/// A shell command run by the all-powerful seed twin.
inline pagi_exec::Request shell(std::string line) {
  return pagi_exec::Request{.tool = "command_exec", .args = {std::move(line)}, .twin_id = "twin-aegis"};
}

/// True while a process with this pid exists (zombies count as gone: they run nothing).
inline bool process_alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return false;
  std::string all((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto close = all.rfind(')');
  return close != std::string::npos && close + 2 < all.size() && all[close + 2] != 'Z';
}

/// Polls until `pid` is gone or ~5 s pass; returns whether it is gone. Not a timing assertion:
/// the bound only keeps a broken build from hanging.
inline bool wait_gone(pid_t pid) {
  for (int i = 0; i < 500; ++i) {
    if (!process_alive(pid)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return !process_alive(pid);
}

/// Reads a whole file, or "" when it cannot be read.
inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace test_support
