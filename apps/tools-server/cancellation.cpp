// SPDX-License-Identifier: Apache-2.0
// CancellationWatcher: one thread polls the running RPCs' contexts and fires their stop tokens.
#include "cancellation.hpp"

namespace tools_server {

CancellationWatcher::Registration::~Registration() {
  if (owner_ != nullptr) owner_->unregister(entry_);
}

std::stop_token CancellationWatcher::Registration::token() const noexcept { return entry_->source.get_token(); }

codec::StopCause CancellationWatcher::Registration::cause() const noexcept { return entry_->cause.load(); }

CancellationWatcher::CancellationWatcher(std::chrono::milliseconds period)
    : period_(period), thread_([this](std::stop_token stop) { poll_loop(std::move(stop)); }) {}

CancellationWatcher::~CancellationWatcher() {
  thread_.request_stop();
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

CancellationWatcher::Registration CancellationWatcher::watch(const grpc::ServerContextBase& context) {
  const std::lock_guard lock(mutex_);
  auto entry = entries_.emplace(entries_.end());
  entry->context = &context;
  if (stopping_) {
    entry->cause = codec::StopCause::shutdown;
    entry->source.request_stop();
  }
  return Registration(this, entry);
}

void CancellationWatcher::stop_all() {
  const std::lock_guard lock(mutex_);
  stopping_ = true;
  for (auto& entry : entries_) {
    if (entry.source.stop_requested()) continue;
    entry.cause = codec::StopCause::shutdown;
    entry.source.request_stop();
  }
}

std::size_t CancellationWatcher::size() const {
  const std::lock_guard lock(mutex_);
  return entries_.size();
}

void CancellationWatcher::unregister(std::list<Entry>::iterator entry) {
  // Under the lock: the poller never touches a context whose handler has returned.
  const std::lock_guard lock(mutex_);
  entries_.erase(entry);
}

void CancellationWatcher::poll_loop(std::stop_token stop) {
  std::unique_lock lock(mutex_);
  while (!stop.stop_requested()) {
    // wait_for with a stop token returns early when the watcher is destroyed.
    wake_.wait_for(lock, stop, period_, [] { return false; });
    if (stop.stop_requested()) break;
    poll_once();
  }
}

// Called with mutex_ held. IsCancelled() is safe from any thread with the sync API (see
// grpcpp/server_context.h) and does not block: it only tries to pluck the call's completion op.
void CancellationWatcher::poll_once() {
  for (auto& entry : entries_) {
    if (entry.source.stop_requested() || !entry.context->IsCancelled()) continue;
    entry.cause = codec::StopCause::client;
    entry.source.request_stop();
  }
}

}  // namespace tools_server
