// SPDX-License-Identifier: Apache-2.0
// The graceful stop: health first, then refusals, then the wait, then whatever is left is stopped.
#include "drain.hpp"

#include <algorithm>
#include <string>

#include "log.hpp"

namespace tools_server {
namespace {

// How often the wait looks for a second signal.
constexpr auto signal_poll = std::chrono::milliseconds(50);

// A second SIGTERM/SIGINT already delivered, taken without waiting.
bool second_signal(const sigset_t& stop_signals) {
  const timespec now{.tv_sec = 0, .tv_nsec = 0};
  return sigtimedwait(&stop_signals, nullptr, &now) > 0;
}

std::string executions(std::size_t count) {
  return std::to_string(count) + (count == 1 ? " execution" : " executions");
}

}  // namespace

DrainEnd wait_for_idle(Cancellations& cancellations, std::chrono::milliseconds timeout,
                       const std::function<bool()>& interrupted) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    if (cancellations.wait_idle_for(std::clamp(left, std::chrono::milliseconds(0), signal_poll))) {
      return DrainEnd::finished;
    }
    if (interrupted()) return DrainEnd::interrupted;
    if (left <= signal_poll) return DrainEnd::timed_out;
  }
}

void drain(Cancellations& cancellations, Readiness& readiness, std::chrono::milliseconds timeout,
           const sigset_t& stop_signals) {
  // Refusals first, then health: once a client reads NOT_SERVING, no new execution starts here.
  const auto running = cancellations.begin_drain();
  readiness.drain();
  log(LogLevel::info, "draining: " + executions(running) + " in flight, new ones refused with UNAVAILABLE; waiting up to " +
                          std::to_string(timeout.count()) + " ms for them (TOOLS_DRAIN_TIMEOUT_MS; SIGTERM again stops them now)",
      {LogField::word("event", "drain_started"), LogField::number("in_flight", static_cast<std::int64_t>(running))});
  const auto end = wait_for_idle(cancellations, timeout, [&] { return second_signal(stop_signals); });
  const auto left = cancellations.in_flight();
  cancellations.stop_all();  // kills the process trees still running; their calls are answered as cancelled
  const auto fields = [&](const char* result) {
    return LogFields{LogField::word("event", "drain_ended"), LogField::word("result", result),
                     LogField::number("killed", end == DrainEnd::finished ? 0 : static_cast<std::int64_t>(left))};
  };
  switch (end) {
    case DrainEnd::finished:
      log(LogLevel::info, "drain ended: every execution in flight finished (" + std::to_string(running) + ")",
          fields("finished"));
      break;
    case DrainEnd::timed_out:
      log(LogLevel::warn,
          "drain ended: timed out after " + std::to_string(timeout.count()) + " ms, " + executions(left) + " killed",
          fields("timed_out"));
      break;
    case DrainEnd::interrupted:
      log(LogLevel::warn, "drain ended: second signal, " + executions(left) + " killed", fields("second_signal"));
      break;
  }
}

}  // namespace tools_server
