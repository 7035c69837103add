// SPDX-License-Identifier: Apache-2.0
// CancellationWatcher: turns cancelled RPCs and server shutdown into std::stop_token requests.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <list>
#include <mutex>
#include <stop_token>
#include <thread>

#include <grpcpp/server_context.h>

#include "codec.hpp"

namespace tools_server {

/// The synchronous gRPC API has no cancellation callback, so one background thread polls
/// ServerContext::IsCancelled() of every running RPC (every `period`) and requests stop on its
/// stop_source; stop_all() requests stop on all of them, and on every later registration.
/// All members are thread-safe.
class CancellationWatcher {
  struct Entry {
    const grpc::ServerContextBase* context = nullptr;
    std::stop_source source;
    std::atomic<codec::StopCause> cause{codec::StopCause::none};
  };

 public:
  /// One watched RPC. Move-only RAII: unregisters on destruction, which must happen before the
  /// ServerContext dies (keep it a local of the handler).
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

   private:
    friend class CancellationWatcher;
    Registration(CancellationWatcher* owner, std::list<Entry>::iterator entry) : owner_(owner), entry_(entry) {}
    CancellationWatcher* owner_;
    std::list<Entry>::iterator entry_;
  };

  /// Starts the polling thread.
  explicit CancellationWatcher(std::chrono::milliseconds period = std::chrono::milliseconds(20));
  /// Stops the polling thread. Every Registration must be gone by then.
  ~CancellationWatcher();
  CancellationWatcher(const CancellationWatcher&) = delete;
  CancellationWatcher& operator=(const CancellationWatcher&) = delete;

  /// Starts watching `context`; stopped at once if stop_all() was called already.
  [[nodiscard]] Registration watch(const grpc::ServerContextBase& context);

  /// Requests stop on every running and future RPC (server shutdown).
  void stop_all();

  /// Number of RPCs being watched.
  [[nodiscard]] std::size_t size() const;

 private:
  void poll_loop(std::stop_token stop);
  void poll_once();
  void unregister(std::list<Entry>::iterator entry);

  std::chrono::milliseconds period_;
  mutable std::mutex mutex_;
  std::condition_variable_any wake_;
  std::list<Entry> entries_;  // a list: iterators stay valid while others come and go
  bool stopping_ = false;
  std::jthread thread_;  // last: starts after, and joins before, the members above
};

}  // namespace tools_server
