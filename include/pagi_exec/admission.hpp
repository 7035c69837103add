// SPDX-License-Identifier: Apache-2.0
// Admission: how many executions may run at once, per twin and in all, and how much memory they
// may reserve together. One twin cannot take every slot, nor the host's memory.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "pagi_exec/error.hpp"

namespace pagi_exec {

/// The limits of an Admission. Fill with designated initializers, then Admission::make.
struct AdmissionSpec {
  std::uint32_t max_running = 64;          ///< executions running at once, all twins together
  std::uint32_t max_running_per_twin = 16; ///< executions of one twin running at once
  /// Sum of the memory limits of the executions running at once; 0: no budget. An execution
  /// without a memory limit (0) reserves the whole budget, so it runs alone.
  std::uint64_t memory_budget_bytes = 0;
  bool operator==(const AdmissionSpec&) const = default;
};

/// The defaults the server uses when the operator sets nothing: a quarter of `max_running` per
/// twin (at least 1), and half of the host's memory as the budget (0 when it cannot be read).
[[nodiscard]] std::uint32_t default_per_twin_limit(std::uint32_t max_running) noexcept;
/// The host's MemTotal from /proc/meminfo in bytes; 0 when it cannot be read.
[[nodiscard]] std::uint64_t host_memory_bytes();

/// Counts running executions and grants a Slot only within every limit; beyond any, the call is
/// refused at once (never queued) with Errc::resource_exhausted naming the limit. Shared by every
/// thread (and by every Executor made from it across policy reloads). Thread-safe.
class Admission {
 public:
  /// A granted execution; gives its place back when destroyed. Move-only.
  class Slot {
   public:
    Slot(Slot&& other) noexcept
        : owner_(std::exchange(other.owner_, nullptr)), twin_(std::move(other.twin_)), memory_(other.memory_) {}
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    Slot& operator=(Slot&&) = delete;
    ~Slot();

   private:
    friend class Admission;
    Slot(Admission* owner, std::string twin, std::uint64_t memory)
        : owner_(owner), twin_(std::move(twin)), memory_(memory) {}
    Admission* owner_;
    std::string twin_;
    std::uint64_t memory_;
  };

  /// What is running now.
  struct Usage {
    std::uint32_t running = 0;
    std::uint64_t memory_reserved_bytes = 0;
  };

  /// Errc::invalid_config when a count is 0, or the per-twin limit exceeds the total.
  [[nodiscard]] static Result<std::shared_ptr<Admission>> make(AdmissionSpec spec);

  /// A slot for one execution of `twin` whose memory limit is `memory_bytes` (0: unlimited).
  /// `twin_limit` (the policy's TwinLimits::max_running) can only lower max_running_per_twin.
  /// Errc::resource_exhausted, with a message naming the limit reached ("per-twin concurrency
  /// limit", "concurrency limit", "memory budget") and the numbers. Every Slot must be destroyed
  /// before the Admission.
  [[nodiscard]] Result<Slot> admit(std::string_view twin, std::uint64_t memory_bytes,
                                   std::optional<std::uint64_t> twin_limit = std::nullopt);

  [[nodiscard]] const AdmissionSpec& spec() const noexcept { return spec_; }
  [[nodiscard]] Usage usage() const;
  /// Executions of `twin` running now.
  [[nodiscard]] std::uint32_t running(std::string_view twin) const;

  Admission(const Admission&) = delete;
  Admission& operator=(const Admission&) = delete;

 private:
  explicit Admission(AdmissionSpec spec) : spec_(spec) {}
  void release(const std::string& twin, std::uint64_t memory) noexcept;

  AdmissionSpec spec_;
  mutable std::mutex mutex_;
  std::uint32_t running_ = 0;
  std::uint64_t memory_ = 0;
  std::map<std::string, std::uint32_t, std::less<>> per_twin_;  // only twins with runs
};

}  // namespace pagi_exec
