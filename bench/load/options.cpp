// SPDX-License-Identifier: Apache-2.0
// pagi-load's flags (CLI11); the mix is parsed here into one weight per kind.
#include "options.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <charconv>
#include <iostream>

namespace pagi_load {
namespace {

// "allowed=3,health=1" -> weights; kinds not named weigh 0. An error names the bad part.
std::string parse_mix(const std::string& text, Weights& weights) {
  weights = {};
  std::string_view rest = text;
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    const auto item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    const auto equals = item.find('=');
    if (equals == std::string_view::npos) return "'" + std::string(item) + "' is not KIND=WEIGHT";
    const auto name = item.substr(0, equals);
    const auto value = item.substr(equals + 1);
    const auto kind = std::find(kind_names.begin(), kind_names.end(), name);
    if (kind == kind_names.end()) return "unknown kind '" + std::string(name) + "'";
    unsigned weight = 0;
    const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), weight);
    if (error != std::errc{} || end != value.data() + value.size() || weight > 1000) {
      return "the weight of " + std::string(name) + " must be a whole number 0-1000, not '" + std::string(value) + "'";
    }
    weights[static_cast<std::size_t>(kind - kind_names.begin())] = weight;
  }
  for (const auto weight : weights) {
    if (weight > 0) return {};
  }
  return "every weight is 0: nothing to send";
}

std::string kinds_help() {
  std::string list;
  for (const auto name : kind_names) list += (list.empty() ? "" : ", ") + std::string(name);
  return list;
}

}  // namespace

std::variant<Options, int> parse_options(int argc, char** argv) {
  Options options;
  options.mix[static_cast<std::size_t>(Kind::allowed)] = 1;
  std::string mix;
  double duration = 10;
  std::uint64_t requests = 0;

  CLI::App app{"pagi-load: drives a running tools.ToolExecutorService at a given concurrency and mix, and "
               "prints throughput, latency percentiles and counts by gRPC status and by outcome."};
  app.add_option("--target", options.target, "HOST:PORT or unix:/path of the server")->required();
  app.add_option("--concurrency", options.concurrency, "virtual clients, one thread and one channel each")
      ->capture_default_str()->check(CLI::Range(1U, 10000U));
  app.add_option("--duration", duration, "seconds of the measured phase (with --requests: only if given)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--requests", requests, "stop after this many requests in total")->check(CLI::Range(1UL, 1UL << 40));
  app.add_option("--warmup", options.warmup_s, "seconds of the same mix before measuring, not counted (0: connect only)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--mix", mix, "weights as KIND=N,...; kinds: " + kinds_help() + " (default allowed=1)");
  app.add_option("--twin", options.calls.twin, "twin of allowed, failing, timeout, flood and check calls")
      ->capture_default_str();
  app.add_option("--refused-twin", options.calls.refused_twin, "twin of refused calls (one the policy refuses)")
      ->capture_default_str();
  app.add_option("--token", options.calls.token, "send 'authorization: Bearer TOKEN' metadata");
  app.add_flag("--stream", options.stream, "executions through StreamExecution (every event read)");
  app.add_option("--command", options.calls.command, "program of allowed and refused calls")->capture_default_str();
  app.add_option("--args", options.calls.args, "its arguments (default: hi; give --args alone for none)")
      ->expected(0, 1 << 20);
  app.add_option("--flood-bytes", options.calls.flood_bytes, "bytes a flood call prints")
      ->capture_default_str()->check(CLI::Range(1UL, 1UL << 40));
  app.add_option("--deadline", options.deadline_s, "per-call deadline in seconds")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_flag("--shared-channel", options.shared_channel, "one channel for every client (default: one each)");
  app.add_option("--json", options.json_path, "also write the figures to this file as JSON");
  app.add_flag("--quiet", options.quiet, "print nothing but errors");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (!mix.empty()) {
    if (const auto error = parse_mix(mix, options.mix); !error.empty()) {
      std::cerr << "pagi-load: --mix: " << error << '\n';
      return 2;
    }
  }
  if (app.count("--requests") > 0) options.requests = requests;
  if (!options.requests || app.count("--duration") > 0) options.duration_s = duration;
  return options;
}

}  // namespace pagi_load
