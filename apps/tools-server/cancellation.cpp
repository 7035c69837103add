// SPDX-License-Identifier: Apache-2.0
// Cancellations: the stop sources of the running RPCs, and their count.
#include "cancellation.hpp"

namespace tools_server {

void Cancellations::Entry::stop(codec::StopCause why) noexcept {
  auto none = codec::StopCause::none;
  if (cause.compare_exchange_strong(none, why)) source.request_stop();
}

Cancellations::Registration::~Registration() {
  if (owner_ != nullptr) owner_->unregister(entry_);
}

std::stop_token Cancellations::Registration::token() const noexcept { return entry_->source.get_token(); }

codec::StopCause Cancellations::Registration::cause() const noexcept { return entry_->cause.load(); }

// Lock-free: the entry lives as long as this registration, and its cause settles the race with stop_all().
void Cancellations::Registration::cancel() noexcept { entry_->stop(codec::StopCause::client); }

Cancellations::Registration Cancellations::watch() {
  const std::lock_guard lock(mutex_);
  auto entry = entries_.emplace(entries_.end());
  if (stopping_) entry->stop(codec::StopCause::shutdown);
  return Registration(this, entry);
}

void Cancellations::stop_all() {
  const std::lock_guard lock(mutex_);
  stopping_ = true;
  for (auto& entry : entries_) entry.stop(codec::StopCause::shutdown);
}

std::size_t Cancellations::begin_drain() {
  const std::lock_guard lock(mutex_);
  draining_ = true;
  return entries_.size();
}

std::size_t Cancellations::in_flight() {
  const std::lock_guard lock(mutex_);
  return entries_.size();
}

bool Cancellations::wait_idle_for(std::chrono::milliseconds limit) {
  std::unique_lock lock(mutex_);
  return idle_.wait_for(lock, limit, [this] { return entries_.empty(); });
}

void Cancellations::unregister(std::list<Entry>::iterator entry) {
  const std::lock_guard lock(mutex_);
  entries_.erase(entry);
  if (entries_.empty()) idle_.notify_all();
}

}  // namespace tools_server
