// SPDX-License-Identifier: Apache-2.0
// A host that decides policy with the headers alone: built with include directories, tl-expected
// and toml++ only, nothing of ours linked, and every public header under the project's warnings
// without -Wno-missing-field-initializers. Exits non-zero on the first decision it did not expect.
#include <pagi_exec/pagi_exec.hpp>
#include <pagi_exec/policy_file.hpp>

#include <cstdio>
#include <string>
#include <string_view>

namespace {

int failures = 0;

void expect(const pagi_exec::Decision& decision, bool allowed, std::string_view rule, const char* what) {
  if (decision.allowed == allowed && decision.rule == rule) return;
  ++failures;
  std::fprintf(stderr, "FAIL %s: %s by '%s' (%s), expected %s by '%.*s'\n", what,
               decision.allowed ? "allowed" : "refused", decision.rule.c_str(), decision.reason.c_str(),
               allowed ? "allowed" : "refused", static_cast<int>(rule.size()), rule.data());
}

constexpr std::string_view policy_text = R"(
always_refused = ["rm", "shutdown"]

[twins.twin-builder]
allow = ["command_exec", "make"]
deny = ["curl"]

[twins.twin-builder.limits]
timeout_ms = 5000
)";

}  // namespace

int main() {
  using pagi_exec::Request;

  const auto file = pagi_exec::parse_policy(policy_text, "header_only.toml");
  if (!file) {
    std::fprintf(stderr, "FAIL parse_policy: %s\n", file.error().message().c_str());
    return 1;
  }
  const auto& from_file = file->policy;
  expect(from_file.decide(Request{.tool = "command_exec", .args = {"make all"}, .twin_id = "twin-builder"}), true,
         "twins.twin-builder.allow[command_exec]", "file: a granted shell line");
  expect(from_file.decide(Request{.tool = "command_exec", .args = {"curl x | sh"}, .twin_id = "twin-builder"}), false,
         "twins.twin-builder.deny[curl]", "file: a denied program inside the line");
  if (file->policy.spec().twins.at("twin-builder").limits.timeout != std::chrono::milliseconds(5000)) {
    ++failures;
    std::fprintf(stderr, "FAIL file: timeout_ms not read\n");
  }

  const auto seed = pagi_exec::Policy::seed_default();
  expect(seed.decide(Request{.tool = "ls", .args = {"-l"}, .twin_id = "twin-aegis"}), true, "twins.twin-aegis.allow[*]",
         "seed: any tool for twin-aegis");
  expect(seed.decide(Request{.tool = "sh", .args = {"-c", "rm x"}, .twin_id = "twin-aegis"}), false,
         "always_refused[rm]", "seed: rm through sh -c");
  expect(seed.decide(Request{.tool = "command_exec", .args = {"cd /tmp && rm -rf x"}, .twin_id = "twin-aegis"}), false,
         "always_refused[rm]", "seed: rm in a shell line");
  expect(seed.decide(Request{.tool = "echo", .twin_id = "twin-unknown"}), false, "default_deny", "seed: unknown twin");

  const auto made = pagi_exec::Policy::make(pagi_exec::PolicySpec{
      .twins = {{"twin-a", pagi_exec::TwinGrants{.allow = {"echo"}}}},
      .always_refused = {"rm"},
  });
  if (!made) {
    std::fprintf(stderr, "FAIL Policy::make: %s\n", made.error().message().c_str());
    return 1;
  }
  expect(made->decide(Request{.tool = "echo", .twin_id = "twin-a"}), true, "twins.twin-a.allow[echo]",
         "made: a granted program");
  expect(made->decide(Request{.tool = "cat", .twin_id = "twin-a"}), false, "default_deny", "made: an ungranted program");

  // What a host decides with (Executor::check's judgement): the catalog, the request limits and
  // the tool's own argument rules, all from headers.
  const auto catalog = pagi_exec::ToolCatalog::seed_default();
  const pagi_exec::RequestLimits limits{};
  expect(pagi_exec::judge(seed, catalog, limits, Request{.tool = "file_write", .twin_id = "twin-sentinel"}), false,
         pagi_exec::invalid_request_rule, "judge: file_write without a path and content");
  expect(pagi_exec::judge(seed, catalog, limits, Request{.tool = std::string("ec\0ho", 5), .twin_id = "twin-aegis"}),
         false, pagi_exec::invalid_request_rule, "judge: a NUL byte in the tool");
  expect(pagi_exec::judge(seed, catalog, limits, Request{.tool = "vector_query", .twin_id = "twin-trace"}), true,
         "twins.twin-trace.allow[vector_query]", "judge: a catalog tool");

  std::printf("%d unexpected decisions\n", failures);
  return failures == 0 ? 0 : 1;
}
