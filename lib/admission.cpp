// SPDX-License-Identifier: Apache-2.0
// Admission: counting running executions against the total, per-twin and memory limits.
#include "pagi_exec/admission.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace pagi_exec {
namespace {

std::string mib(std::uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

}  // namespace

std::uint32_t default_per_twin_limit(std::uint32_t max_running) noexcept {
  return max_running / 4 > 0 ? max_running / 4 : 1;
}

std::uint64_t host_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string key, unit;
    std::uint64_t kib = 0;
    if (fields >> key >> kib >> unit && key == "MemTotal:" && unit == "kB") return kib << 10;
  }
  return 0;
}

Result<std::shared_ptr<Admission>> Admission::make(AdmissionSpec spec) {
  if (spec.max_running == 0 || spec.max_running_per_twin == 0) {
    return fail(Errc::invalid_config, "the concurrency limits must be at least 1");
  }
  if (spec.max_running_per_twin > spec.max_running) {
    return fail(Errc::invalid_config, "the per-twin concurrency limit (" + std::to_string(spec.max_running_per_twin) +
                                          ") is larger than the concurrency limit (" +
                                          std::to_string(spec.max_running) + ")");
  }
  return std::shared_ptr<Admission>(new Admission(spec));
}

Result<Admission::Slot> Admission::admit(std::string_view twin, std::uint64_t memory_bytes,
                                         std::optional<std::uint64_t> twin_limit) {
  const std::uint64_t per_twin = std::min<std::uint64_t>(spec_.max_running_per_twin,
                                                         twin_limit.value_or(spec_.max_running_per_twin));
  const std::uint64_t budget = spec_.memory_budget_bytes;
  // An unlimited run could take any amount: it reserves everything.
  const std::uint64_t reserve = budget == 0 ? 0 : (memory_bytes == 0 ? budget : memory_bytes);
  if (budget != 0 && reserve > budget) {
    return fail(Errc::resource_exhausted, "memory budget: the execution's memory limit (" + mib(memory_bytes) +
                                              ") is larger than the whole memory budget (" + mib(budget) + ")");
  }
  std::lock_guard lock(mutex_);
  const auto found = per_twin_.find(twin);
  const std::uint32_t of_twin = found == per_twin_.end() ? 0 : found->second;
  // The twin's own limit is checked first: a flooding twin is told about its share.
  if (of_twin >= per_twin) {
    return fail(Errc::resource_exhausted, "per-twin concurrency limit reached: twin '" + std::string(twin) +
                                              "' already runs " + std::to_string(of_twin) + " of " +
                                              std::to_string(per_twin) +
                                              " executions at once; try again when one ends");
  }
  if (running_ >= spec_.max_running) {
    return fail(Errc::resource_exhausted, "concurrency limit reached: " + std::to_string(running_) + " of " +
                                              std::to_string(spec_.max_running) +
                                              " executions are running; try again when one ends");
  }
  if (budget != 0 && memory_ + reserve > budget) {
    return fail(Errc::resource_exhausted, "memory budget reached: running executions reserve " + mib(memory_) +
                                              " of " + mib(budget) + ", this one needs " + mib(reserve) +
                                              " (its memory limit); try again when one ends");
  }
  ++running_;
  memory_ += reserve;
  if (found == per_twin_.end()) {
    per_twin_.emplace(std::string(twin), 1);
  } else {
    ++found->second;
  }
  return Slot(this, std::string(twin), reserve);
}

void Admission::release(const std::string& twin, std::uint64_t memory) noexcept {
  std::lock_guard lock(mutex_);
  --running_;
  memory_ -= memory;
  if (const auto found = per_twin_.find(twin); found != per_twin_.end() && --found->second == 0) per_twin_.erase(found);
}

Admission::Slot::~Slot() {
  if (owner_ != nullptr) owner_->release(twin_, memory_);
}

Admission::Usage Admission::usage() const {
  std::lock_guard lock(mutex_);
  return {.running = running_, .memory_reserved_bytes = memory_};
}

std::uint32_t Admission::running(std::string_view twin) const {
  std::lock_guard lock(mutex_);
  const auto found = per_twin_.find(twin);
  return found == per_twin_.end() ? 0 : found->second;
}

}  // namespace pagi_exec
