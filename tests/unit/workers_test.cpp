// SPDX-License-Identifier: Apache-2.0
// Workers: a thread per waiting task at once, up to the cap; idle threads are reused.
#include <doctest/doctest.h>

#include <latch>

#include "workers.hpp"

TEST_SUITE("workers") {
  TEST_CASE("tasks run at once up to the cap; past it run() says no; a finished thread is reused") {
    tools_server::Workers workers(2);
    std::latch started(2);
    std::latch release(1);
    const auto hold = [&] {
      started.count_down();
      release.wait();
    };
    REQUIRE(workers.run(hold));
    REQUIRE(workers.run(hold));
    started.wait();  // both run at the same time: neither waited for the other
    bool ran = false;
    CHECK_FALSE(workers.run([&] { ran = true; }));  // the cap: refused, not queued
    release.count_down();
    std::latch done(1);
    // The two threads go idle once their tasks return; the next task takes one of them.
    bool accepted = false;
    while (!accepted) accepted = workers.run([&] { done.count_down(); });
    done.wait();
    CHECK_FALSE(ran);
  }
}
