// SPDX-License-Identifier: Apache-2.0
// The id pool: a locked stack of free ids.
#include "sys/id_pool.hpp"

#include <limits>
#include <string>

namespace pagi_exec::sys {

void IdLease::reset() noexcept {
  if (pool_) pool_->give_back(id_);
  pool_.reset();
}

IdPool::IdPool(std::uint32_t first, std::uint32_t count) : first_(first), count_(count) {
  free_.reserve(count);
  for (std::uint32_t i = count; i > 0; --i) free_.push_back(first + i - 1);  // first is lent first
}

Result<std::shared_ptr<IdPool>> IdPool::make(std::uint32_t first, std::uint32_t count) {
  if (count == 0) return fail(Errc::invalid_config, "an id pool needs at least one id");
  if (first > std::numeric_limits<std::uint32_t>::max() - count) {
    return fail(Errc::invalid_config, "id pool " + std::to_string(first) + ":" + std::to_string(count) +
                                          " goes past the largest id");
  }
  return std::make_shared<IdPool>(first, count);
}

Result<IdLease> IdPool::acquire() {
  std::lock_guard lock(mutex_);
  if (free_.empty()) {
    return fail(Errc::sandbox_setup, "all " + std::to_string(count_) + " ids of the pool " + std::to_string(first_) +
                                         ":" + std::to_string(count_) + " are in use (raise its count)");
  }
  const auto id = free_.back();
  free_.pop_back();
  return IdLease(shared_from_this(), id);
}

std::size_t IdPool::in_use() const {
  std::lock_guard lock(mutex_);
  return count_ - free_.size();
}

void IdPool::give_back(std::uint32_t id) noexcept {
  std::lock_guard lock(mutex_);
  free_.push_back(id);  // reserved for count_ entries: never allocates
}

}  // namespace pagi_exec::sys
