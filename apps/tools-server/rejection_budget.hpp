// SPDX-License-Identifier: Apache-2.0
// RejectionBudget: how many refused credentials are logged and audited one by one.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>

namespace tools_server {

/// A token bucket over the rejections of credentials. Each one recorded costs a log line and an
/// audit record (synced at every record by default), and a caller with no credential at all can
/// send them as fast as the network carries them: unbounded, they would hold every worker on the
/// audit log's lock and fill its disk. Past the bucket, rejections are only counted; the next one
/// recorded says how many were not. (Every rejection is still answered, and counted in the
/// metrics' requests_total by its status code.) Thread-safe.
class RejectionBudget {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::uint32_t default_per_second = 20;
  static constexpr std::uint32_t default_burst = 100;

  explicit RejectionBudget(std::uint32_t per_second = default_per_second, std::uint32_t burst = default_burst,
                           Clock::time_point now = Clock::now());

  /// Whether the rejection at `now` is recorded one by one: nullopt when it is only counted;
  /// otherwise how many before it were only counted since the last one recorded.
  [[nodiscard]] std::optional<std::uint64_t> take(Clock::time_point now = Clock::now());

 private:
  std::mutex mutex_;
  double per_second_;
  double burst_;
  double tokens_;
  Clock::time_point refilled_at_;
  std::uint64_t unrecorded_ = 0;
};

}  // namespace tools_server
