// SPDX-License-Identifier: Apache-2.0
// Network namespaces of native executions: loopback only, one per execution, prepared ahead.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>

#include "pagi_exec/error.hpp"
#include "sys/unique_fd.hpp"

namespace pagi_exec::sys {

/// Spare loopback-only network namespaces, each handed to exactly one execution and never
/// taken back: a namespace a run has used may still hold its sockets, so it is discarded (the
/// kernel frees it when the run's last process is gone) and a fresh one is made in its place.
/// A background thread keeps `spare` namespaces ready, so an execution joins one with setns
/// (~10 µs) instead of creating it on its own path (~0.7 ms). Needs CAP_SYS_ADMIN. Thread-safe.
class NetnsPool {
 public:
  /// Counters, for benchmarks and tests.
  struct Stats {
    std::uint64_t made = 0;    ///< namespaces prepared by the background thread
    std::uint64_t taken = 0;   ///< handed to executions
    std::uint64_t missed = 0;  ///< take() found none ready
    std::uint64_t failed = 0;  ///< preparing one failed (the thread then waits for the next take)
  };

  /// Starts the background thread, which fills the pool at once. Errc::sandbox_setup when this
  /// thread's network namespace cannot be held open (no /proc?).
  [[nodiscard]] static Result<std::unique_ptr<NetnsPool>> make(std::size_t spare);
  ~NetnsPool();
  NetnsPool(const NetnsPool&) = delete;
  NetnsPool& operator=(const NetnsPool&) = delete;

  /// A namespace no process has used yet (the caller owns it and must not give it to a second
  /// execution), or an invalid descriptor when none is ready: the execution then creates its
  /// own (clone with CLONE_NEWNET), which isolates as well and costs more.
  [[nodiscard]] unique_fd take();
  [[nodiscard]] Stats stats() const;
  /// Blocks until `spare` namespaces are ready or preparing failed (benchmarks, tests).
  void wait_full();

  NetnsPool(std::size_t spare, unique_fd home);  // use make()

 private:
  void fill();

  std::size_t spare_;
  unique_fd home_;  // the server's own namespace, to which the thread returns after each one
  mutable std::mutex mutex_;
  std::condition_variable wake_, changed_;
  std::deque<unique_fd> ready_;
  Stats stats_;
  bool stopping_ = false;
  bool stalled_ = false;  // the last attempt failed: wait for a take() before trying again
  std::thread thread_;
};

/// In a fresh network namespace (any process or thread of it): brings up `lo`, the only
/// interface a new namespace has. Returns 0 or errno. Async-signal-safe.
[[nodiscard]] int bring_up_loopback_in_child() noexcept;

/// In the child: joins the namespace. Returns 0 or errno. Async-signal-safe.
[[nodiscard]] int join_netns_in_child(int netns_fd) noexcept;

}  // namespace pagi_exec::sys
