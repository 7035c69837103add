// SPDX-License-Identifier: Apache-2.0
// The kinds of call pagi-load makes, the weighted schedule that interleaves them, and one call of
// each kind against a ToolExecutorService stub.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "tools.grpc.pb.h"

namespace pagi_load {

enum class Kind : std::uint8_t { allowed, refused, failing, timeout, flood, health, check };
inline constexpr std::size_t kind_count = 7;
inline constexpr std::array<std::string_view, kind_count> kind_names = {
    "allowed", "refused", "failing", "timeout", "flood", "health", "check"};

/// What a finished call meant, beyond its gRPC status.
enum class Outcome : std::uint8_t {
  succeeded,   // OK and success (a HealthCheck answered, a CheckPolicy allowed)
  refused,     // OK, refused by policy (or a CheckPolicy that says refused)
  failed,      // OK, ran and did not succeed (non-zero exit, signal, cannot start)
  timed_out,   // OK, killed at the server's time limit
  rpc_error,   // a non-OK gRPC status
  incomplete,  // a stream that ended OK without its finished event
};
inline constexpr std::size_t outcome_count = 6;
inline constexpr std::array<std::string_view, outcome_count> outcome_names = {
    "succeeded", "refused", "failed", "timed_out", "rpc_error", "incomplete"};

using Weights = std::array<unsigned, kind_count>;

/// What each kind sends (the CLI's --twin, --command, ...).
struct Calls {
  std::string twin = "twin-aegis";
  std::string refused_twin = "twin-nobody";
  std::string token;  // "" = no authorization metadata
  std::string command = "echo";
  std::vector<std::string> args = {"hi"};
  std::uint64_t flood_bytes = 16 * 1024 * 1024;
};

/// One call as measured.
struct Sample {
  Kind kind{};
  grpc::StatusCode status = grpc::StatusCode::OK;
  Outcome outcome{};
  std::optional<int> exit_code;  // an execution's, when the server answered one (a refusal's is 1)
  std::chrono::nanoseconds latency{};
};

/// The kinds in schedule order: each kind appears `weight` times, spread evenly (smooth weighted
/// round robin), so request number i has kind schedule[i % size] and any run of requests holds
/// the mix's proportions. Empty when every weight is 0.
[[nodiscard]] std::vector<Kind> make_schedule(const Weights& weights);

/// Makes calls of every kind through one stub. Not thread-safe: one per virtual client.
class Workload {
 public:
  Workload(std::shared_ptr<grpc::Channel> channel, const Calls& calls, bool stream,
           std::chrono::milliseconds deadline);

  /// Makes one call of `kind` and times it.
  [[nodiscard]] Sample call(Kind kind);

 private:
  struct Answer {
    grpc::Status status;
    Outcome outcome{};
    std::optional<int> exit_code;
  };
  void prepare(grpc::ClientContext& context) const;
  [[nodiscard]] Answer execute(const tools::ExecutionRequest& request);
  [[nodiscard]] Answer execute_streamed(const tools::ExecutionRequest& request);
  [[nodiscard]] Answer health();
  [[nodiscard]] Answer check(const tools::ExecutionRequest& request);

  std::unique_ptr<tools::ToolExecutorService::Stub> stub_;
  std::string token_;
  bool stream_;
  std::chrono::milliseconds deadline_;
  std::array<tools::ExecutionRequest, kind_count> requests_;  // built once; health's is unused
};

}  // namespace pagi_load
