// SPDX-License-Identifier: Apache-2.0
// Property: the policy's decision on a request equals its decision on the same request read back
// from the audit log, and the record says what was decided. Over generated requests (shell
// fragments, path tricks, NUL bytes, non-ASCII text), for the built-in policy and a policy file,
// each with and without safe mode. A fuzzer cannot judge this: it needs the log written and read.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <pagi_exec/pagi_exec.hpp>
#include <pagi_exec/policy_file.hpp>

#include "test_support.hpp"

using namespace pagi_exec;
using namespace std::string_literals;

namespace {

constexpr std::string_view policy_text = R"(
always_refused = ["rm", "shutdown"]
[twins.twin-aegis]
allow = ["*"]
deny = ["curl"]
network = "egress"
allow_domains = ["pypi.org", "*.pythonhosted.org"]
[twins.twin-sentinel]
allow = ["file_write", "command_exec", "git_status", "/bin/echo"]
[twins.twin-sentinel.limits]
timeout_ms = 1000
[tools.git_status]
program = "/usr/bin/git"
args = ["status"]
)";

// Requests built from pieces that reach every rule: known and unknown twins, granted, refused and
// catalog tools, path spellings of refused programs, shell lines the scanner judges or cannot.
class RequestGenerator {
 public:
  explicit RequestGenerator(std::uint64_t seed) : rng_(seed) {}

  Request next() {
    Request request{.tool = pick(tools_), .twin_id = pick(twins_), .job_id = pick(jobs_), .ns = pick(jobs_)};
    const auto count = below(6);
    for (std::size_t i = 0; i < count; ++i) request.args.push_back(arg());
    if (below(4) == 0) request.authenticated_twin = pick(twins_);
    return request;
  }

 private:
  std::size_t below(std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_); }
  const std::string& pick(const std::vector<std::string>& from) { return from[below(from.size())]; }
  std::string arg() {
    auto out = pick(words_);
    for (auto more = below(3); more > 0; --more) out += (below(2) == 0 ? " " : "") + pick(words_);
    return out;
  }

  std::mt19937_64 rng_;
  std::vector<std::string> twins_{"twin-aegis", "twin-sentinel", "twin-trace", "twin-ops", "", "nobody",
                                  "../twin-aegis", "twin aegis", "ツイン", "twin-aegis\0x"s};
  std::vector<std::string> tools_{"command_exec", "file_write", "echo", "/bin/echo", "rm", "/bin/rm",
                                  "/usr/bin/../bin/rm", "./rm", "RM", "git_status", "curl", "vector_query",
                                  "", "ls;rm", "éclair", "ec\0ho"s};
  std::vector<std::string> jobs_{"", "job-1", "ジョブ", "a/b"};
  std::vector<std::string> words_{"-rf", "/", "hello", "ls -la; rm -rf ~", "$(date)", "`whoami`", "sudo rm x",
                                  "sh -c 'rm x'", "notes/a.txt", "../../etc/passwd", "a\nb", "tab\there",
                                  "\"quoted\"", "\\", "ünïcödé", "😀", "nul\0in"s, "find . -exec rm {} \\;",
                                  "curl http://x", "X=1 rm y", "", "python3 -c 'print(1)'", "eval", ";", "|"};
};

// The request as its audit record holds it: everything a decision reads (metadata is not
// recorded, and the generator makes none).
Request read_back(const AuditEntry& entry) {
  return Request{.tool = entry.tool, .args = entry.args, .twin_id = entry.twin_id, .job_id = entry.job_id,
                 .ns = entry.ns, .authenticated_twin = entry.authenticated_twin};
}

void check_round_trip(const Policy& policy, const ToolCatalog& catalog, std::uint64_t seed) {
  constexpr std::size_t requests = 400;
  test_support::TempDir dir;
  const auto path = dir.path() / "audit.jsonl";
  auto log = AuditLog::open({.path = path});
  REQUIRE_MESSAGE(log, (log ? "" : log.error().message()));

  RequestGenerator generate(seed);
  std::vector<std::pair<Request, Decision>> decided;
  for (std::size_t i = 0; i < requests; ++i) {
    auto request = generate.next();
    auto decision = judge(policy, catalog, {}, request);
    REQUIRE((*log)->decided(request, Outcome{.execution_id = std::to_string(i), .decision = decision}));
    decided.emplace_back(std::move(request), std::move(decision));
  }

  const auto report = read_audit_log(path, {});
  REQUIRE_MESSAGE(report, (report ? "" : report.error().message()));
  REQUIRE(report->entries.size() == requests);
  std::size_t allowed = 0;
  for (std::size_t i = 0; i < requests; ++i) {
    const auto& [request, decision] = decided[i];
    const auto& entry = report->entries[i];
    INFO("seed ", seed, ", request ", i, ": ", entry.raw_json);
    REQUIRE_FALSE(entry.args_truncated);  // the generator stays under the record's caps
    auto back = read_back(entry);
    back.metadata = request.metadata;
    CHECK(back == request);
    CHECK(judge(policy, catalog, {}, back) == decision);
    CHECK(entry.allowed == decision.allowed);
    CHECK(entry.rule == decision.rule);
    CHECK(entry.reason == decision.reason);
    CHECK(entry.notes == decision.notes);
    allowed += decision.allowed ? 1 : 0;
  }
  // The property is only worth something if both answers occur.
  CHECK(allowed > 0);
  CHECK(allowed < requests);
}

std::uint64_t seed() {
  // PAGI_EXEC_PROPERTY_SEED explores other requests; the suite uses a fixed seed, so a failure repeats.
  const char* given = std::getenv("PAGI_EXEC_PROPERTY_SEED");
  return given != nullptr ? std::strtoull(given, nullptr, 10) : 20261201;
}

}  // namespace

TEST_SUITE("audit_property") {
  TEST_CASE("a decision read back from the audit log is the decision made") {
    const auto file = parse_policy(policy_text, "audit_property");
    REQUIRE_MESSAGE(file, (file ? "" : file.error().message()));
    for (const bool safe_mode : {false, true}) {
      CAPTURE(safe_mode);
      check_round_trip(Policy::seed_default().with_safe_mode(safe_mode), ToolCatalog::seed_default(), seed());
      check_round_trip(file->policy.with_safe_mode(safe_mode), file->catalog, seed() + 1);
    }
  }
}
