// SPDX-License-Identifier: Apache-2.0
// Cancellations: turns cancelled RPCs and server shutdown into std::stop_token requests, and
// counts the execution RPCs in flight for the drain.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <list>
#include <mutex>
#include <stop_token>

#include "codec.hpp"

namespace tools_server {

/// One stop_source per running RPC. The RPC's reactor reports a client that cancelled or whose
/// deadline passed (OnCancel -> Registration::cancel); stop_all() stops every running RPC, and
/// every later one (server shutdown). Whichever comes first is the cause. begin_drain() marks the
/// server as draining (new executions are refused, see draining()) and in_flight() /
/// wait_idle_for() let the drain wait for the running ones. All members are thread-safe.
class Cancellations {
  struct Entry {
    std::stop_source source;
    std::atomic<codec::StopCause> cause{codec::StopCause::none};
    // Requests stop with `why`, unless something stopped the RPC already.
    void stop(codec::StopCause why) noexcept;
  };

 public:
  /// One watched RPC. Move-only RAII: unregisters on destruction (keep it in the RPC's reactor).
  class Registration {
   public:
    Registration(Registration&& other) noexcept : owner_(other.owner_), entry_(other.entry_) { other.owner_ = nullptr; }
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;
    Registration& operator=(Registration&&) = delete;
    ~Registration();

    /// Fires when the client cancels, the deadline passes or the server shuts down.
    [[nodiscard]] std::stop_token token() const noexcept;
    /// Who stopped the RPC, if anyone did.
    [[nodiscard]] codec::StopCause cause() const noexcept;
    /// The client cancelled the call or its deadline passed (any thread).
    void cancel() noexcept;

   private:
    friend class Cancellations;
    Registration(Cancellations* owner, std::list<Entry>::iterator entry) : owner_(owner), entry_(entry) {}
    Cancellations* owner_;
    std::list<Entry>::iterator entry_;
  };

  Cancellations() = default;
  Cancellations(const Cancellations&) = delete;
  Cancellations& operator=(const Cancellations&) = delete;

  /// Starts watching one RPC; stopped at once if stop_all() was called already.
  [[nodiscard]] Registration watch();

  /// Requests stop on every running and future RPC (server shutdown).
  void stop_all();

  /// From now on draining() is true; returns the RPCs watched at that moment.
  std::size_t begin_drain();
  /// True once begin_drain() was called: new executions are to be refused.
  [[nodiscard]] bool draining() const noexcept { return draining_.load(); }
  /// The RPCs watched now (running, or about to run or be refused).
  [[nodiscard]] std::size_t in_flight();
  /// Waits at most `limit` for in_flight() to reach 0; true when it did.
  [[nodiscard]] bool wait_idle_for(std::chrono::milliseconds limit);

 private:
  void unregister(std::list<Entry>::iterator entry);

  std::mutex mutex_;
  std::condition_variable idle_;  // notified when the last watched RPC unregisters
  std::list<Entry> entries_;  // a list: iterators stay valid while others come and go
  bool stopping_ = false;
  std::atomic<bool> draining_{false};
};

}  // namespace tools_server
