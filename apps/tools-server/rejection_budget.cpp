// SPDX-License-Identifier: Apache-2.0
#include "rejection_budget.hpp"

#include <algorithm>
#include <utility>

namespace tools_server {

RejectionBudget::RejectionBudget(std::uint32_t per_second, std::uint32_t burst, Clock::time_point now)
    : per_second_(per_second), burst_(burst), tokens_(burst), refilled_at_(now) {}

std::optional<std::uint64_t> RejectionBudget::take(Clock::time_point now) {
  const std::lock_guard lock(mutex_);
  if (now > refilled_at_) {
    const std::chrono::duration<double> passed = now - refilled_at_;
    tokens_ = std::min(burst_, tokens_ + passed.count() * per_second_);
    refilled_at_ = now;
  }
  if (tokens_ < 1.0) {
    ++unrecorded_;
    return std::nullopt;
  }
  tokens_ -= 1.0;
  return std::exchange(unrecorded_, 0);
}

}  // namespace tools_server
