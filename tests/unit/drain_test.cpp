// SPDX-License-Identifier: Apache-2.0
// Unit: readiness rules, and the drain's count of executions in flight and its wait, without a server.
#include <doctest/doctest.h>

#include <optional>
#include <thread>

#include "cancellation.hpp"
#include "drain.hpp"
#include "readiness.hpp"

using namespace tools_server;
using namespace std::chrono_literals;

TEST_SUITE("readiness") {
  TEST_CASE("serving once started, unless draining or the required audit log fails") {
    const ReadinessFacts ready{.started = true, .audit_required = false, .audit_healthy = true, .draining = false};
    CHECK(is_serving(ready));
    CHECK(not_serving_reason(ready).empty());

    auto facts = ready;
    facts.started = false;
    CHECK_FALSE(is_serving(facts));
    CHECK(not_serving_reason(facts) == "not started");

    facts = ready;
    facts.draining = true;
    CHECK_FALSE(is_serving(facts));
    CHECK(not_serving_reason(facts) == "draining");

    facts = ready;
    facts.audit_healthy = false;
    CHECK(is_serving(facts));  // the failure is reported by HealthCheck; executions still run
    facts.audit_required = true;
    CHECK_FALSE(is_serving(facts));
    CHECK(not_serving_reason(facts) == "the audit log is failing and TOOLS_AUDIT_REQUIRED is set");
  }

  TEST_CASE("a host without an audit log has a healthy one; degraded isolation still serves") {
    pagi_exec::HealthReport report;
    report.requested = pagi_exec::Isolation::native;
    report.effective = pagi_exec::Isolation::cwd;
    REQUIRE(report.degraded());
    const auto facts = readiness_facts(report, true, false);
    CHECK(facts == ReadinessFacts{.started = true, .audit_required = true, .audit_healthy = true, .draining = false});
    CHECK(is_serving(facts));
    CHECK_FALSE(is_serving(readiness_facts(report, false, true)));
  }
}

TEST_SUITE("drain") {
  TEST_CASE("counts the watched RPCs and marks the drain") {
    Cancellations cancellations;
    CHECK(cancellations.in_flight() == 0);
    CHECK_FALSE(cancellations.draining());
    std::optional<Cancellations::Registration> first(cancellations.watch());
    {
      const auto second = cancellations.watch();
      CHECK(cancellations.in_flight() == 2);
    }
    CHECK(cancellations.begin_drain() == 1);
    CHECK(cancellations.draining());
    CHECK_FALSE(first->token().stop_requested());  // draining refuses new runs; it stops none
    first.reset();
    CHECK(cancellations.in_flight() == 0);
  }

  TEST_CASE("the wait ends when the last RPC in flight ends") {
    Cancellations cancellations;
    std::optional<Cancellations::Registration> running(cancellations.watch());
    std::thread finisher;
    bool asked = false;
    // The first time the wait looks for a signal, the running RPC ends: the wait must see it.
    const auto end = wait_for_idle(cancellations, 3'600'000ms, [&] {
      if (!asked) finisher = std::thread([&] { running.reset(); });
      asked = true;
      return false;
    });
    finisher.join();
    CHECK(end == DrainEnd::finished);
    CHECK(cancellations.in_flight() == 0);
  }

  TEST_CASE("nothing in flight: finished at once, even with no time to wait") {
    Cancellations cancellations;
    CHECK(wait_for_idle(cancellations, 0ms, [] { return false; }) == DrainEnd::finished);
  }

  TEST_CASE("an RPC that does not end: timed out, or interrupted by a second signal") {
    Cancellations cancellations;
    const auto running = cancellations.watch();
    CHECK(wait_for_idle(cancellations, 0ms, [] { return false; }) == DrainEnd::timed_out);
    CHECK(wait_for_idle(cancellations, 3'600'000ms, [] { return true; }) == DrainEnd::interrupted);
    CHECK(cancellations.in_flight() == 1);
  }
}
