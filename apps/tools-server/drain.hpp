// SPDX-License-Identifier: Apache-2.0
// The graceful stop after SIGTERM/SIGINT: refuse new executions, let the running ones finish.
#pragma once

#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <functional>

#include "cancellation.hpp"
#include "readiness.hpp"

namespace tools_server {

/// How a wait for the running executions ended.
enum class DrainEnd : std::uint8_t { finished, timed_out, interrupted };

/// Waits until no execution is in flight, `timeout` passed, or `interrupted()` returns true,
/// which is asked at least every 50 ms (a second signal must be seen promptly).
[[nodiscard]] DrainEnd wait_for_idle(Cancellations& cancellations, std::chrono::milliseconds timeout,
                                     const std::function<bool()>& interrupted);

/// The drain, in order: grpc.health.v1 says NOT_SERVING, new RequestExecution and
/// StreamExecution calls get UNAVAILABLE, the running ones get up to `timeout` to finish and
/// answer; a second signal of `stop_signals` (blocked, taken here with sigtimedwait) cuts that
/// short. Whatever still runs is then stopped (Cancellations::stop_all) and answered as
/// cancelled. One log line when it starts and one when it ends. The caller shuts the server down.
void drain(Cancellations& cancellations, Readiness& readiness, std::chrono::milliseconds timeout,
           const sigset_t& stop_signals);

}  // namespace tools_server
