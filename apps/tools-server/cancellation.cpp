// SPDX-License-Identifier: Apache-2.0
// Cancellations: the stop sources of the running RPCs.
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

void Cancellations::unregister(std::list<Entry>::iterator entry) {
  const std::lock_guard lock(mutex_);
  entries_.erase(entry);
}

}  // namespace tools_server
