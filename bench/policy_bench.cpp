// SPDX-License-Identifier: Apache-2.0
// policy_bench: one policy decision against a large policy (10,000 twins of 100 grants each),
// with Google Benchmark. The target is under 1 us per decision.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>

#include <pagi_exec/policy.hpp>

namespace {

constexpr int twins = 10'000;
constexpr int grants_per_twin = 100;

void print_help() {
  std::printf(
      "usage: policy_bench [google benchmark flags]\n\n"
      "Times Policy::decide (the decision on a normalised command) and judge() (what a server does per\n"
      "request: normalise with the catalog, then decide) against a policy of %d twins with %d grants\n"
      "each, for an allowed call (the twin's last grant), a refused one (an unknown twin) and a denied\n"
      "program (the twin's deny list). bench/run passes --benchmark_format=json.\n\n",
      twins, grants_per_twin);
  benchmark::PrintDefaultHelp();
}

std::string twin_name(int i) { return "twin-" + std::to_string(i); }

// Every twin is granted tool-0 ... tool-99 and refused curl; the middle twin is the one asked.
const pagi_exec::Policy& large_policy() {
  static const pagi_exec::Policy policy = [] {
    pagi_exec::PolicySpec spec{.always_refused = {"rm", "shutdown", "reboot"}};
    for (int t = 0; t < twins; ++t) {
      pagi_exec::TwinGrants grants{.deny = {"curl"}};
      grants.allow.reserve(grants_per_twin);
      for (int g = 0; g < grants_per_twin; ++g) grants.allow.push_back("tool-" + std::to_string(g));
      spec.twins.emplace(twin_name(t), std::move(grants));
    }
    auto made = pagi_exec::Policy::make(std::move(spec));
    if (!made) {
      std::fprintf(stderr, "policy_bench: %s\n", made.error().message().c_str());
      std::abort();
    }
    return *made;
  }();
  return policy;
}

pagi_exec::Request request_for(const std::string& twin, const std::string& tool) {
  return {.tool = tool, .args = {"--flag", "value"}, .twin_id = twin};
}

// The three requests the benchmarks time, and whether the policy must allow them.
struct Case {
  pagi_exec::Request request;
  bool allowed;
};
const Case allowed_case{request_for(twin_name(twins / 2), "tool-" + std::to_string(grants_per_twin - 1)), true};
const Case unknown_twin_case{request_for("twin-nobody", "tool-1"), false};
const Case denied_program_case{request_for(twin_name(twins / 2), "/usr/bin/curl"), false};

void decide(benchmark::State& state, const Case& c) {
  const auto& policy = large_policy();
  const auto command = pagi_exec::Command::make(c.request, pagi_exec::ToolCatalog::seed_default());
  if (!command || policy.decide(*command).allowed != c.allowed) {
    state.SkipWithError("the policy did not decide as expected");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(policy.decide(*command));
}

void judge(benchmark::State& state, const Case& c) {
  const auto& policy = large_policy();
  const auto catalog = pagi_exec::ToolCatalog::seed_default();
  const pagi_exec::RequestLimits limits;
  if (pagi_exec::judge(policy, catalog, limits, c.request).allowed != c.allowed) {
    state.SkipWithError("the policy did not decide as expected");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(pagi_exec::judge(policy, catalog, limits, c.request));
}

}  // namespace

BENCHMARK_CAPTURE(decide, allowed, allowed_case);
BENCHMARK_CAPTURE(decide, refused_unknown_twin, unknown_twin_case);
BENCHMARK_CAPTURE(decide, denied_program, denied_program_case);
BENCHMARK_CAPTURE(judge, allowed, allowed_case);
BENCHMARK_CAPTURE(judge, refused_unknown_twin, unknown_twin_case);
BENCHMARK_CAPTURE(judge, denied_program, denied_program_case);

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv, print_help);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
