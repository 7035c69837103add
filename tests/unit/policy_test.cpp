// SPDX-License-Identifier: Apache-2.0
// Policy decisions over the seed matrix, table-driven; no processes, no sockets.
#include <doctest/doctest.h>

#include <pagi_exec/policy.hpp>

using pagi_exec::Policy;
using pagi_exec::PolicySpec;
using pagi_exec::Request;

namespace {
Request req(std::string twin, std::string tool, std::vector<std::string> args = {}) {
  return Request{.tool = std::move(tool), .args = std::move(args), .twin_id = std::move(twin)};
}
}  // namespace

TEST_SUITE("policy") {
  TEST_CASE("the seed matrix grants and refuses as the original service did") {
    const auto policy = Policy::seed_default();
    struct Row {
      const char* twin;
      const char* tool;
      bool allowed;
      const char* rule;
    };
    const Row rows[] = {
        {"twin-aegis", "echo", true, "twins.twin-aegis.allow[*]"},
        {"twin-aegis", "command_exec", true, "twins.twin-aegis.allow[*]"},
        {"twin-aegis", "vector_query", true, "twins.twin-aegis.allow[*]"},
        {"twin-sentinel", "file_write", true, "twins.twin-sentinel.allow[file_write]"},
        {"twin-sentinel", "command_exec", true, "twins.twin-sentinel.allow[command_exec]"},
        {"twin-sentinel", "vector_query", true, "twins.twin-sentinel.allow[vector_query]"},
        {"twin-sentinel", "echo", false, "default_deny"},
        {"twin-trace", "vector_query", true, "twins.twin-trace.allow[vector_query]"},
        {"twin-trace", "command_exec", false, "default_deny"},
        {"twin-trace", "file_write", false, "default_deny"},
        {"twin-unknown", "vector_query", false, "default_deny"},
        {"", "echo", false, "default_deny"},
        {"twin-aegis", "", false, "invalid_command"},
        {"TWIN-AEGIS", "echo", false, "default_deny"},  // twin ids are case-sensitive
    };
    for (const auto& row : rows) {
      CAPTURE(row.twin);
      CAPTURE(row.tool);
      const auto decision = policy.decide(req(row.twin, row.tool));
      CHECK(decision.allowed == row.allowed);
      CHECK(decision.rule == row.rule);
      CHECK_FALSE(decision.reason.empty());
    }
  }

  TEST_CASE("an always-refused program is refused in every spelling, for every twin") {
    const auto policy = Policy::seed_default();
    for (const char* spelling : {"rm", "/bin/rm", "/usr/bin/rm", "./rm", "../../bin/rm", "//bin///rm", "rm/",
                                 "/usr/local/bin/rm", "shutdown", "/sbin/reboot", "format", "delete"}) {
      for (const char* twin : {"twin-aegis", "twin-sentinel", "twin-trace", "nobody"}) {
        CAPTURE(spelling);
        CAPTURE(twin);
        const auto decision = policy.decide(req(twin, spelling, {"-rf", "/"}));
        CHECK_FALSE(decision.allowed);
        CHECK(decision.rule.rfind("always_refused[", 0) == 0);
        CHECK(decision.reason.find("always refused") != std::string::npos);
      }
    }
  }

  TEST_CASE("matching is case-sensitive and by whole program name") {
    const auto policy = Policy::seed_default();
    for (const char* tool : {"RM", "Rm", "rmdir", "/bin/rmdir", "firm", "rm.sh", "reboot-notes"}) {
      CAPTURE(tool);
      CHECK(policy.decide(req("twin-aegis", tool)).allowed);
    }
  }

  TEST_CASE("the reason names the spelling and the program it resolves to") {
    const auto decision = Policy::seed_default().decide(req("twin-aegis", "../../bin/rm"));
    CHECK(decision.reason == "command '../../bin/rm' (program 'rm') is always refused");
    CHECK(decision.rule == "always_refused[rm]");
  }

  TEST_CASE("safe mode refuses the shell bridge and makes '*' grant nothing") {
    const auto policy = Policy::seed_default().with_safe_mode(true);
    CHECK(policy.safe_mode());
    CHECK_FALSE(policy.decide(req("twin-sentinel", "command_exec", {"ls"})).allowed);
    CHECK(policy.decide(req("twin-sentinel", "command_exec", {"ls"})).rule == "safe_mode");
    CHECK(policy.decide(req("twin-sentinel", "file_write")).allowed);
    const auto star = policy.decide(req("twin-aegis", "echo"));
    CHECK_FALSE(star.allowed);
    CHECK(star.rule == "safe_mode");
    CHECK(star.reason.find("grant 'echo' by name") != std::string::npos);
  }

  TEST_CASE("deny lists beat grants, including '*'") {
    auto spec = PolicySpec::seed_default();
    spec.twins["twin-aegis"].deny = {"curl"};
    const auto policy = Policy::make(spec);
    REQUIRE(policy);
    const auto decision = policy->decide(req("twin-aegis", "/usr/bin/curl"));
    CHECK_FALSE(decision.allowed);
    CHECK(decision.rule == "twins.twin-aegis.deny[curl]");
    CHECK(policy->decide(req("twin-aegis", "wget")).allowed);
  }

  TEST_CASE("grants match the exact tool string, not a program of the same name elsewhere") {
    const auto policy = Policy::make({.twins = {{"t", {.allow = {"ls"}}}}});
    REQUIRE(policy);
    CHECK(policy->decide(req("t", "ls")).allowed);
    CHECK_FALSE(policy->decide(req("t", "/tmp/evil/ls")).allowed);
  }

  TEST_CASE("make refuses specs that cannot be meant") {
    SUBCASE("twin names that are not one path component") {
      for (const char* name : {"", "a/b", "..", ".", "-x", "tab\there"}) {
        CAPTURE(name);
        const auto made = Policy::make({.twins = {{name, {.allow = {"echo"}}}}});
        REQUIRE_FALSE(made);
        CHECK(made.error().code == pagi_exec::Errc::invalid_config);
        CHECK(made.error().message().find("twin name") != std::string::npos);
      }
    }
    SUBCASE("an empty grant") {
      CHECK_FALSE(Policy::make({.twins = {{"t", {.allow = {""}}}}}));
    }
    SUBCASE("'*' or nothing in a refusal list") {
      CHECK_FALSE(Policy::make({.always_refused = {"*"}}));
      CHECK_FALSE(Policy::make({.always_refused = {"/"}}));
      CHECK_FALSE(Policy::make({.twins = {{"t", {.deny = {"*"}}}}}));
    }
  }

  TEST_CASE("decisions are pure: same input, same decision") {
    const auto policy = Policy::seed_default();
    const auto r = req("twin-sentinel", "command_exec", {"echo hi"});
    CHECK(policy.decide(r) == policy.decide(r));
    CHECK(Policy::seed_default() == policy);
  }
}
