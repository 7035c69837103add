// SPDX-License-Identifier: Apache-2.0
// RejectionBudget: a burst recorded one by one, then the refill rate; every rejection accounted for.
#include <doctest/doctest.h>

#include "rejection_budget.hpp"

using tools_server::RejectionBudget;
using namespace std::chrono_literals;

TEST_SUITE("rejection_budget") {
  TEST_CASE("the burst is recorded, then one per refill; the next recorded one counts those in between") {
    const auto t0 = RejectionBudget::Clock::time_point{} + 1h;
    RejectionBudget budget(10, 3, t0);  // 10 a second, 3 at once
    for (int i = 0; i < 3; ++i) CHECK(budget.take(t0) == 0u);
    for (int i = 0; i < 5; ++i) CHECK_FALSE(budget.take(t0).has_value());
    CHECK_FALSE(budget.take(t0 + 50ms).has_value());  // half a token
    CHECK(budget.take(t0 + 100ms) == 6u);             // one token: it says how many were not recorded
    CHECK_FALSE(budget.take(t0 + 100ms).has_value());
    CHECK(budget.take(t0 + 10s) == 1u);  // a long pause refills to the burst, no further
    CHECK(budget.take(t0 + 10s) == 0u);
    CHECK(budget.take(t0 + 10s) == 0u);
    CHECK_FALSE(budget.take(t0 + 10s).has_value());
  }

  TEST_CASE("a clock that goes back refills nothing") {
    const auto t0 = RejectionBudget::Clock::time_point{} + 1h;
    RejectionBudget budget(10, 1, t0);
    CHECK(budget.take(t0) == 0u);
    CHECK_FALSE(budget.take(t0 - 1s).has_value());
    CHECK(budget.take(t0 + 100ms) == 1u);
  }
}
