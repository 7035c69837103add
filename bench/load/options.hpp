// SPDX-License-Identifier: Apache-2.0
// pagi-load's command line: what to drive, how hard, for how long, with which mix.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "workload.hpp"

namespace pagi_load {

struct Options {
  std::string target;                  // host:port or unix:/path
  unsigned concurrency = 32;           // virtual clients, one thread each
  std::optional<double> duration_s;    // measured phase; unset when only --requests bounds it
  std::optional<std::uint64_t> requests;  // stop after this many requests in total
  double warmup_s = 1;                 // seconds of the same mix before the measured phase
  Weights mix{};                       // per kind, indexed by Kind
  Calls calls;                         // what each kind sends
  bool stream = false;                 // executions through StreamExecution
  bool shared_channel = false;         // one channel for all clients instead of one each
  double deadline_s = 120;             // per-call deadline
  std::string json_path;               // --json FILE ("" = none)
  bool quiet = false;                  // no table on stdout (the JSON file still written)
};

/// Parses argv. Returns the options, or the process exit code when it should end now (--help: 0,
/// bad usage: non-zero, after printing why).
[[nodiscard]] std::variant<Options, int> parse_options(int argc, char** argv);

}  // namespace pagi_load
