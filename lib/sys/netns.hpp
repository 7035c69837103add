// SPDX-License-Identifier: Apache-2.0
// Network namespaces of native executions: loopback only, prepared ahead, never shared by two
// twins.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "pagi_exec/error.hpp"
#include "sys/unique_fd.hpp"

namespace pagi_exec::sys {

/// Loopback-only network namespaces for native executions. A run takes a namespace that no other
/// twin has ever used: one its own twin's earlier run gave back, or a fresh one. A namespace
/// comes back only after its run's last process is gone (the init's reap), and is kept for that
/// twin only if nothing of the run is left in it: no socket of any kind and no TCP connection in
/// TIME_WAIT (what a listener, a port or a connection of the earlier run would show). So two
/// twins never meet on 127.0.0.1, and a twin's later run sees at most the loopback counters of
/// its own earlier ones. Reuse saves creating and tearing down a namespace per run (~17 % of the
/// machine's CPU under load, bench/run). A background thread keeps `spare` fresh namespaces
/// ready and checks what comes back, so an execution joins one with setns (~10 µs). Needs
/// CAP_SYS_ADMIN. Thread-safe.
class NetnsPool {
 public:
  /// Counters, for benchmarks and tests.
  struct Stats {
    std::uint64_t made = 0;    ///< namespaces prepared by the background thread
    std::uint64_t taken = 0;   ///< fresh ones handed to executions
    std::uint64_t reused = 0;  ///< given back by a twin's run and handed to a later run of that twin
    std::uint64_t dropped = 0; ///< given back but not kept: something was left in it, or enough are kept
    std::uint64_t missed = 0;  ///< take() found none ready
    std::uint64_t failed = 0;  ///< preparing one failed (the thread then waits for the next take)
  };

  /// Starts the background thread, which fills the pool at once. Errc::sandbox_setup when this
  /// thread's network namespace cannot be held open (no /proc?).
  [[nodiscard]] static Result<std::unique_ptr<NetnsPool>> make(std::size_t spare);
  ~NetnsPool();
  NetnsPool(const NetnsPool&) = delete;
  NetnsPool& operator=(const NetnsPool&) = delete;

  /// For one execution of the twin `owner` (a key no other twin shares): a namespace an earlier
  /// run of `owner` gave back clean, else a fresh one, else an invalid descriptor when none is
  /// ready: the execution then creates its own (clone with CLONE_NEWNET), which isolates as well
  /// and costs more. The caller must not give it to a second execution at the same time.
  [[nodiscard]] unique_fd take(const std::string& owner);
  /// Once every process of the run that used `ns` is gone: the background thread keeps it for
  /// `owner`'s next run if nothing is left in it, else drops it.
  void give_back(const std::string& owner, unique_fd ns);
  [[nodiscard]] Stats stats() const;
  /// Blocks until `spare` namespaces are ready or preparing failed, and every one given back was
  /// checked (benchmarks, tests).
  void wait_full();

  NetnsPool(std::size_t spare, unique_fd home);  // use make()

 private:
  void fill();
  void check_returned(std::unique_lock<std::mutex>& lock);

  std::size_t spare_;
  unique_fd home_;  // the server's own namespace, to which the thread returns after each one
  mutable std::mutex mutex_;
  std::condition_variable wake_, changed_;
  std::deque<unique_fd> ready_;
  std::deque<std::pair<std::string, unique_fd>> returned_;  // to check, on the thread
  std::map<std::string, std::vector<unique_fd>> kept_;      // checked clean, by owner
  std::size_t kept_count_ = 0;
  bool checking_ = false;  // one given back is being looked into, off the lock
  Stats stats_;
  bool stopping_ = false;
  bool stalled_ = false;  // the last attempt failed: wait for a take() before trying again
  std::thread thread_;
};

/// A fresh loopback-only namespace made now, for a run that needs one in hand before it starts
/// (an egress run, when the pool had none ready). The calling thread's namespace is untouched.
[[nodiscard]] Result<unique_fd> make_netns_now();

/// A TCP socket listening on 127.0.0.1:`port` inside the namespace `netns` (a socket stays in the
/// namespace it was made in: the egress proxy accepts a run's connections on it from outside).
/// The calling thread's namespace is untouched. Errc::sandbox_setup naming the step that failed.
[[nodiscard]] Result<unique_fd> listen_in_netns(int netns, std::uint16_t port);

/// In a fresh network namespace (any process or thread of it): brings up `lo`, the only
/// interface a new namespace has. Returns 0 or errno. Async-signal-safe.
[[nodiscard]] int bring_up_loopback_in_child() noexcept;

/// In the child: joins the namespace. Returns 0 or errno. Async-signal-safe.
[[nodiscard]] int join_netns_in_child(int netns_fd) noexcept;

}  // namespace pagi_exec::sys
