// SPDX-License-Identifier: Apache-2.0
// A run on a thread of its own whose output lines can be awaited: handshakes between concurrent
// runs ("ready 4711"), so tests order events by what the runs say, never by sleeping.
#pragma once

#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include <pagi_exec/pagi_exec.hpp>

namespace test_support {

class BackgroundRun {
 public:
  /// Starts `request` on `executor` (which must outlive this object).
  BackgroundRun(const pagi_exec::Executor& executor, pagi_exec::Request request)
      : thread_([this, &executor, request = std::move(request)](std::stop_token stop) {
          pagi_exec::RunHooks hooks{.output = [this](pagi_exec::OutputStream stream, std::string_view chunk) {
            if (stream == pagi_exec::OutputStream::out) {
              std::lock_guard lock(mutex_);
              out_ += chunk;
            }
            changed_.notify_all();
            return true;
          }};
          auto outcome = executor.run(request, stop, hooks);
          std::lock_guard lock(mutex_);
          outcome_ = std::move(outcome);
          changed_.notify_all();
        }) {}
  ~BackgroundRun() { thread_.request_stop(); }  // jthread joins
  BackgroundRun(const BackgroundRun&) = delete;
  BackgroundRun& operator=(const BackgroundRun&) = delete;

  /// Waits until the run printed a whole stdout line starting with `prefix` and returns the rest
  /// of that line; nullopt when the run ended without printing one.
  std::optional<std::string> wait_line(std::string_view prefix) {
    std::unique_lock lock(mutex_);
    std::optional<std::string> found;
    changed_.wait(lock, [&] {
      for (std::size_t at = 0, end; (end = out_.find('\n', at)) != std::string::npos; at = end + 1) {
        const std::string_view line(out_.data() + at, end - at);
        if (line.substr(0, prefix.size()) == prefix) {
          found = std::string(line.substr(prefix.size()));
          return true;
        }
      }
      return outcome_.has_value();
    });
    return found;
  }

  /// Waits for the run to end and returns what it returned.
  pagi_exec::Result<pagi_exec::Outcome> finish() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return outcome_.has_value(); });
    return *outcome_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::string out_;
  std::optional<pagi_exec::Result<pagi_exec::Outcome>> outcome_;
  std::jthread thread_;  // last: starts after, and joins before, the members it uses
};

}  // namespace test_support
