// SPDX-License-Identifier: Apache-2.0
// A pool of host uids/gids lent to one execution at a time (ioi/isolate's boxes, as numbers).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "pagi_exec/error.hpp"

namespace pagi_exec::sys {

class IdPool;

/// One id lent by an IdPool; gives it back when destroyed (or reset). Move-only.
class IdLease {
 public:
  IdLease() = default;
  IdLease(std::shared_ptr<IdPool> pool, std::uint32_t id) noexcept : pool_(std::move(pool)), id_(id) {}
  ~IdLease() { reset(); }
  IdLease(IdLease&& other) noexcept : pool_(std::move(other.pool_)), id_(other.id_) {}
  IdLease& operator=(IdLease&& other) noexcept {
    if (this != &other) {
      reset();
      pool_ = std::move(other.pool_);
      id_ = other.id_;
    }
    return *this;
  }
  IdLease(const IdLease&) = delete;
  IdLease& operator=(const IdLease&) = delete;

  [[nodiscard]] std::uint32_t id() const noexcept { return id_; }
  [[nodiscard]] explicit operator bool() const noexcept { return pool_ != nullptr; }
  /// Returns the id to its pool now. Call it only when nothing runs under the id any more.
  void reset() noexcept;

 private:
  std::shared_ptr<IdPool> pool_;
  std::uint32_t id_ = 0;
};

/// The ids [first, first + count), each lent to at most one holder at a time. The most recently
/// returned id is lent first, so a quiet server keeps reusing a few. Thread-safe.
class IdPool : public std::enable_shared_from_this<IdPool> {
 public:
  /// Errc::invalid_config for an empty range or one that wraps past 2^32 - 1.
  [[nodiscard]] static Result<std::shared_ptr<IdPool>> make(std::uint32_t first, std::uint32_t count);

  /// A free id, or Errc::sandbox_setup naming the pool when all are lent.
  [[nodiscard]] Result<IdLease> acquire();
  /// How many ids are lent now.
  [[nodiscard]] std::size_t in_use() const;
  [[nodiscard]] std::uint32_t first() const noexcept { return first_; }
  [[nodiscard]] std::uint32_t count() const noexcept { return count_; }

  IdPool(std::uint32_t first, std::uint32_t count);  // use make()

 private:
  friend class IdLease;
  void give_back(std::uint32_t id) noexcept;

  std::uint32_t first_, count_;
  mutable std::mutex mutex_;
  std::vector<std::uint32_t> free_;  // a stack: back() is lent next
};

}  // namespace pagi_exec::sys
