// SPDX-License-Identifier: Apache-2.0
// Admission: slots per twin and in all, the memory budget, and the Executor asking for a slot
// only for allowed requests.
#include <doctest/doctest.h>

#include <list>
#include <optional>

#include "test_support.hpp"

using namespace pagi_exec;
using test_support::TempDir;

namespace {

std::shared_ptr<Admission> make(AdmissionSpec spec) {
  auto admission = Admission::make(spec);
  REQUIRE(admission);
  return *admission;
}

void check_refused(const Result<Admission::Slot>& slot, const std::string& limit) {
  REQUIRE_FALSE(slot);
  CHECK(slot.error().code == Errc::resource_exhausted);
  CAPTURE(slot.error().message());
  CHECK(slot.error().message().find(limit) != std::string::npos);
}

// A spawner that checks, while "running", how many slots are taken.
class CountingSpawner final : public Spawner {
 public:
  explicit CountingSpawner(std::shared_ptr<Admission> admission) : admission_(std::move(admission)) {}
  Result<ProcessResult> spawn(const LaunchPlan&, std::stop_token, const OutputSink&) const override {
    seen_running = admission_->usage().running;
    return ProcessResult{};
  }
  mutable std::uint32_t seen_running = 0;

 private:
  std::shared_ptr<Admission> admission_;
};

}  // namespace

TEST_SUITE("admission") {
  TEST_CASE("a twin gets at most its share; other twins still get slots up to the total") {
    auto admission = make({.max_running = 3, .max_running_per_twin = 2});
    std::list<Admission::Slot> held;  // a list: slots cannot be move-assigned
    held.push_back(*admission->admit("twin-a", 0));
    held.push_back(*admission->admit("twin-a", 0));
    check_refused(admission->admit("twin-a", 0), "per-twin concurrency limit reached: twin 'twin-a' already runs 2 of 2");
    held.push_back(*admission->admit("twin-b", 0));
    check_refused(admission->admit("twin-c", 0), "concurrency limit reached: 3 of 3");
    CHECK(admission->running("twin-a") == 2);
    held.erase(held.begin());  // one of twin-a's ends
    CHECK(admission->running("twin-a") == 1);
    CHECK(admission->admit("twin-c", 0));  // the slot is back (and freed again at once)
    CHECK(admission->usage().running == 2);
  }

  TEST_CASE("the memory limits of running executions stay within the budget") {
    auto admission = make({.max_running = 10, .max_running_per_twin = 10, .memory_budget_bytes = 100ULL << 20});
    std::optional<Admission::Slot> a{*admission->admit("a", 40ULL << 20)};
    std::optional<Admission::Slot> b{*admission->admit("b", 40ULL << 20)};
    CHECK(admission->usage().memory_reserved_bytes == 80ULL << 20);
    check_refused(admission->admit("c", 40ULL << 20), "memory budget reached");
    CHECK(admission->admit("c", 20ULL << 20));
    check_refused(admission->admit("c", 0), "memory budget");            // unlimited: the whole budget
    check_refused(admission->admit("c", 200ULL << 20), "larger than the whole memory budget");
    a.reset();
    b.reset();
    CHECK(admission->usage().memory_reserved_bytes == 0);
    CHECK(admission->admit("c", 0));  // alone, an unlimited run fits
  }

  TEST_CASE("limits that cannot work are refused") {
    CHECK(Admission::make({.max_running = 0}).error().code == Errc::invalid_config);
    CHECK(Admission::make({.max_running = 2, .max_running_per_twin = 3}).error().code == Errc::invalid_config);
    CHECK(default_per_twin_limit(64) == 16);
    CHECK(default_per_twin_limit(3) == 1);
    CHECK(host_memory_bytes() > 0);
  }

  TEST_CASE("the executor takes a slot for an allowed run only, and a refused admission leaves no trace") {
    TempDir dir;
    auto admission = make({.max_running = 1, .max_running_per_twin = 1});
    auto spawner = std::make_shared<CountingSpawner>(admission);
    auto sandbox = Sandbox::make({.root_dir = dir.path() / "sb"});
    REQUIRE(sandbox);
    auto executor = Executor::open({.sandbox = *sandbox, .spawner = spawner, .admission = admission});
    REQUIRE(executor);
    const auto ran = executor->run({.tool = "/bin/true", .twin_id = "twin-aegis"});
    REQUIRE(ran);
    CHECK(spawner->seen_running == 1);       // held while running
    CHECK(admission->usage().running == 0);  // and given back
    {
      const auto taken = admission->admit("twin-aegis", 0);  // the only slot is busy
      REQUIRE(taken);
      const auto refused = executor->run({.tool = "/bin/rm", .twin_id = "twin-aegis"});
      REQUIRE(refused);  // a policy refusal needs no slot
      CHECK_FALSE(refused->decision.allowed);
      const auto full = executor->run({.tool = "/bin/true", .twin_id = "twin-aegis"});
      REQUIRE_FALSE(full);
      CHECK(full.error().code == Errc::resource_exhausted);
    }
    CHECK(executor->history().query({})->records.size() == 2);  // the run and the refusal; not the rejected admission
  }
}
