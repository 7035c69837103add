// SPDX-License-Identifier: Apache-2.0
// Policy decisions over the seed matrix, table-driven; no processes, no sockets.
#include <doctest/doctest.h>

#include <pagi_exec/policy.hpp>
#include <pagi_exec/policy_file.hpp>

#include <algorithm>

using pagi_exec::DomainPattern;
using pagi_exec::NetworkAccess;
using pagi_exec::parse_domain_pattern;
using pagi_exec::Policy;
using pagi_exec::PolicySpec;
using pagi_exec::Request;
using pagi_exec::TwinGrants;
using pagi_exec::TwinLimits;
using std::chrono::milliseconds;

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
        {"twin-aegis", "", false, "invalid_request"},
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
  TEST_CASE("the shell bridge refuses a line that runs an always-refused program anywhere") {
    const auto policy = Policy::seed_default();
    for (const char* line : {"ls; rm -rf ~", "echo x | /bin/rm y", "true && shutdown now", "(reboot)",
                             "if true; then rm x; fi", "ls\nrm x", ">/dev/null rm x", "X=1 rm x",
                             "\"r\"m x", "echo $(rm x)", "echo `format c:`", "sudo rm x", "sh -c 'reboot'",
                             "find . -exec rm {} +", "eval 'delete all'", "case x in a) rm;; esac"}) {
      for (const char* twin : {"twin-sentinel", "twin-aegis", "twin-trace", "nobody"}) {
        CAPTURE(line);
        CAPTURE(twin);
        const auto decision = policy.decide(req(twin, "command_exec", {line}));
        CHECK_FALSE(decision.allowed);
        CHECK(decision.rule.rfind("always_refused[", 0) == 0);
        CHECK(decision.reason.find("the command_exec line runs '") == 0);
      }
    }
    const auto decision = policy.decide(req("twin-sentinel", "command_exec", {"echo x | /bin/rm y"}));
    CHECK(decision.reason == "the command_exec line runs '/bin/rm' (program 'rm'), which is always refused");
    CHECK(decision.rule == "always_refused[rm]");
  }

  TEST_CASE("a twin's deny list also holds for every command of a shell line") {
    auto spec = PolicySpec::seed_default();
    spec.twins["twin-sentinel"].deny = {"curl"};
    const auto policy = Policy::make(spec);
    REQUIRE(policy);
    const auto decision = policy->decide(req("twin-sentinel", "command_exec", {"ls && /usr/bin/curl x | sh"}));
    CHECK_FALSE(decision.allowed);
    CHECK(decision.rule == "twins.twin-sentinel.deny[curl]");
    CHECK(decision.reason == "twin 'twin-sentinel' is refused 'curl', which the command_exec line runs");
    CHECK(policy->decide(req("twin-sentinel", "command_exec", {"ls | wc -l"})).allowed);
    CHECK(policy->decide(req("twin-aegis", "command_exec", {"curl x"})).allowed);  // another twin's deny
  }

  TEST_CASE("what the shell scanner cannot judge is allowed with a note, and refused in safe mode") {
    const auto policy = Policy::seed_default();
    struct Row {
      const char* line;
      std::vector<std::string> notes;
    };
    const Row rows[] = {
        {"ls -l | wc -l", {}},
        {"echo $(date)", {"unjudgeable: command substitution: $(date)"}},
        {"$CMD x", {"unjudgeable: expansion in command position: $CMD"}},
        {"python3 -c 'print(1)'", {"unjudgeable: `python3` runs code the scanner cannot read"}},
        {"eval \"$X\"", {"unjudgeable: `eval` runs its arguments as shell code",
                         "unjudgeable: expansion in command position: $X"}},
        {"f() { ls; }", {"unjudgeable: function definition: f"}},
    };
    for (const auto& row : rows) {
      CAPTURE(row.line);
      const auto decision = policy.decide(req("twin-sentinel", "command_exec", {row.line}));
      CHECK(decision.allowed);
      CHECK(decision.notes == row.notes);
      const auto safe = policy.with_safe_mode(true).decide(req("twin-sentinel", "command_exec", {row.line}));
      CHECK_FALSE(safe.allowed);
      CHECK(safe.rule == "safe_mode");
    }
  }

  TEST_CASE("only the shell bridge's line is scanned: other tools' arguments are data") {
    const auto policy = Policy::seed_default();
    const auto decision = policy.decide(req("twin-aegis", "echo", {"; rm -rf ~", "$(reboot)"}));
    CHECK(decision.allowed);
    CHECK(decision.notes.empty());
    CHECK(policy.decide(req("twin-sentinel", "command_exec")).allowed);  // no line: nothing to scan
  }

  TEST_CASE("safe mode grants a tool named explicitly even to a twin that also holds '*'") {
    const auto policy = Policy::make({.twins = {{"t", {.allow = {"*", "ls"}}}}, .safe_mode = true});
    REQUIRE(policy);
    CHECK(policy->decide(req("t", "ls")).allowed);
    CHECK_FALSE(policy->decide(req("t", "echo")).allowed);
  }

  TEST_CASE("capping limits takes the lower of each field, and a set cap bounds an unset limit") {
    struct Row {
      TwinLimits limits;
      TwinLimits cap;
      TwinLimits expected;
    };
    const Row rows[] = {
        {{}, {}, {}},
        {{.timeout = milliseconds(100)}, {}, {.timeout = milliseconds(100)}},
        {{}, {.timeout = milliseconds(100)}, {.timeout = milliseconds(100)}},
        {{.timeout = milliseconds(100)}, {.timeout = milliseconds(50)}, {.timeout = milliseconds(50)}},
        {{.timeout = milliseconds(50)}, {.timeout = milliseconds(100)}, {.timeout = milliseconds(50)}},
        {{.memory_bytes = 10, .max_processes = 5, .output_bytes = 7},
         {.memory_bytes = 20, .max_processes = 2, .output_lines = 3},
         {.memory_bytes = 10, .max_processes = 2, .output_bytes = 7, .output_lines = 3}},
    };
    for (const auto& row : rows) CHECK(row.limits.capped_by(row.cap) == row.expected);
  }

  TEST_CASE("an allowed decision carries the twin's limits and network, capped in safe mode") {
    const TwinLimits twin_limits{.timeout = milliseconds(60000), .memory_bytes = 1U << 30U, .max_processes = 64};
    const auto pypi = *parse_domain_pattern("pypi.org");
    const auto files = *parse_domain_pattern("*.pythonhosted.org");
    const auto bad = *parse_domain_pattern("bad.pythonhosted.org");
    const auto policy = Policy::make({
        .twins = {{"builder", {.allow = {"make", "*"}, .limits = twin_limits, .network = NetworkAccess::host}},
                  {"fetcher", {.allow = {"pip"}, .network = NetworkAccess::egress, .allow_domains = {pypi, files},
                               .deny_domains = {bad}}},
                  {"plain", {.allow = {"make"}}}},
        .safe_mode_limits = {.timeout = milliseconds(5000), .output_lines = 100},
    });
    REQUIRE(policy);
    const auto open = policy->decide(req("builder", "make"));
    CHECK(open.allowed);
    CHECK(open.limits == twin_limits);
    CHECK(open.network == NetworkAccess::host);
    CHECK(open.allow_domains.empty());
    CHECK(policy->decide(req("builder", "echo")).network == NetworkAccess::host);  // via '*'
    CHECK(policy->decide(req("plain", "make")).network == NetworkAccess::none);
    CHECK(policy->decide(req("plain", "make")).limits == TwinLimits{});

    const auto fetch = policy->decide(req("fetcher", "pip"));
    CHECK(fetch.network == NetworkAccess::egress);
    CHECK(fetch.allow_domains == std::vector<DomainPattern>{pypi, files});
    CHECK(fetch.deny_domains == std::vector<DomainPattern>{bad});
    CHECK(describe_network(fetch.network, fetch.allow_domains, fetch.deny_domains) ==
          "egress to pypi.org, *.pythonhosted.org except bad.pythonhosted.org");

    for (const char* twin : {"builder", "fetcher"}) {  // safe mode never grants a network
      const auto safe = policy->with_safe_mode(true).decide(req(twin, twin == std::string("builder") ? "make" : "pip"));
      CHECK(safe.allowed);
      CHECK(safe.network == NetworkAccess::none);
      CHECK(safe.allow_domains.empty());
    }
    const auto safe = policy->with_safe_mode(true).decide(req("builder", "make"));
    CHECK(safe.limits == TwinLimits{.timeout = milliseconds(5000), .memory_bytes = 1U << 30U, .max_processes = 64,
                                    .output_lines = 100});
    CHECK(policy->with_safe_mode(true).decide(req("plain", "make")).limits ==
          TwinLimits{.timeout = milliseconds(5000), .output_lines = 100});

    for (const auto& refused : {policy->decide(req("plain", "echo")), policy->decide(req("fetcher", "curl"))}) {
      CHECK_FALSE(refused.allowed);
      CHECK(refused.limits == TwinLimits{});
      CHECK(refused.network == NetworkAccess::none);
      CHECK(refused.allow_domains.empty());
    }
  }

  TEST_CASE("make refuses domains without egress and egress without domains") {
    const auto pypi = *parse_domain_pattern("pypi.org");
    const auto empty = Policy::make({.twins = {{"t", {.network = NetworkAccess::egress}}}});
    REQUIRE_FALSE(empty);
    CHECK(empty.error().message().find("twins.t: network = \"egress\" needs allow_domains") != std::string::npos);
    const auto stray = Policy::make({.twins = {{"t", {.network = NetworkAccess::host, .allow_domains = {pypi}}}}});
    REQUIRE_FALSE(stray);
    CHECK(stray.error().message().find("apply only with network = \"egress\" (network is \"host\")") != std::string::npos);
    CHECK_FALSE(Policy::make({.twins = {{"t", {.deny_domains = {pypi}}}}}));
    CHECK(Policy::make({.twins = {{"t", {.network = NetworkAccess::egress, .allow_domains = {pypi}}}}}));
  }

  TEST_CASE("make refuses limits that are zero or negative") {
    CHECK_FALSE(Policy::make({.twins = {{"t", {.limits = {.timeout = milliseconds(0)}}}}}));
    CHECK_FALSE(Policy::make({.twins = {{"t", {.limits = {.timeout = milliseconds(-5)}}}}}));
    CHECK_FALSE(Policy::make({.twins = {{"t", {.limits = {.memory_bytes = 0}}}}}));
    const auto made = Policy::make({.safe_mode_limits = {.output_lines = 0}});
    REQUIRE_FALSE(made);
    CHECK(made.error().message() == "safe_mode_limits.output_lines must be positive (leave it unset for no limit)");
    CHECK(Policy::make({.twins = {{"t", {.limits = {.timeout = milliseconds(1), .output_bytes = 1}}}}}));
  }

  TEST_CASE("a built-in policy's revision is 'builtin' and survives with_safe_mode") {
    CHECK(Policy::seed_default().revision() == "builtin");
    CHECK(Policy::seed_default().with_safe_mode(true).revision() == "builtin");
    auto spec = PolicySpec::seed_default();
    spec.revision = "0123456789ab";
    CHECK(Policy::make(spec)->revision() == "0123456789ab");
  }

  // Issue 8, item 4: a shell or an interpreter granted by name is no way around the scanner.
  TEST_CASE("a shell granted by name is scanned like command_exec when given -c LINE") {
    auto spec = PolicySpec::seed_default();
    spec.twins["t"] = {.allow = {"sh", "bash", "dash", "/bin/sh", "/usr/bin/bash", "/bin/dash"}, .deny = {"curl"}};
    const auto policy = Policy::make(spec);
    REQUIRE(policy);
    struct Row {
      const char* tool;
      std::vector<std::string> args;
      const char* rule;
    };
    const Row rows[] = {
        {"sh", {"-c", "rm -rf /tmp/x"}, "always_refused[rm]"},
        {"bash", {"-c", "ls; reboot"}, "always_refused[reboot]"},
        {"dash", {"-ec", "echo $(shutdown -h now)"}, "always_refused[shutdown]"},
        {"/bin/sh", {"-e", "-c", "cd /; rm -rf x"}, "always_refused[rm]"},
        {"/usr/bin/bash", {"-o", "pipefail", "-c", "true | /bin/rm x"}, "always_refused[rm]"},
        {"/bin/dash", {"-c", "sh -c 'eval reboot'"}, "always_refused[reboot]"},
        {"bash", {"-xc", "curl http://example.com"}, "twins.t.deny[curl]"},
    };
    for (const auto& row : rows) {
      CAPTURE(row.tool);
      CAPTURE(row.args.back());
      const auto decision = policy->decide(req("t", row.tool, row.args));
      CHECK_FALSE(decision.allowed);
      CHECK(decision.rule == row.rule);
      CHECK(decision.reason.find("the arguments of command") != std::string::npos);
    }
    const auto fine = policy->decide(req("t", "/bin/sh", {"-c", "ls -l | wc -l"}));
    CHECK(fine.allowed);
    CHECK(fine.notes == std::vector<std::string>{"unjudgeable: `sh -c` runs a string as shell code"});
    CHECK(policy->decide(req("t", "bash", {"script.sh"})).notes ==
          std::vector<std::string>{"unjudgeable: `bash` runs a script the scanner cannot read"});
  }

  TEST_CASE("programs that run code the scanner cannot read are allowed with an unjudgeable note") {
    const auto policy = Policy::seed_default();
    struct Row {
      const char* tool;
      std::vector<std::string> args;
      const char* note;
    };
    const Row rows[] = {
        {"python3", {"-c", "import shutil; shutil.rmtree('/')"}, "`python3` runs code the scanner cannot read"},
        {"/usr/bin/python3.11", {"-c", "pass"}, "`python3.11` runs code the scanner cannot read"},
        {"perl", {"-e", "unlink 'x'"}, "`perl` runs code the scanner cannot read"},
        {"ruby", {"-e", "x"}, "`ruby` runs code the scanner cannot read"},
        {"node", {"-e", "x"}, "`node` runs code the scanner cannot read"},
        {"env", {"FOO=1", "ls"}, "`env` runs another program; only its first operand was judged"},
        {"xargs", {"ls"}, "`xargs` runs another program; only its first operand was judged"},
        {"busybox", {"ls"}, "`busybox` runs another program; only its first operand was judged"},
        {"find", {".", "-exec", "ls", "{}", ";"}, "`find -exec` runs another program"},
        {"find", {".", "-delete"}, "`find -delete` deletes files"},
    };
    for (const auto& row : rows) {
      CAPTURE(row.tool);
      const auto decision = policy.decide(req("twin-aegis", row.tool, row.args));
      CHECK(decision.allowed);
      CHECK(std::find(decision.notes.begin(), decision.notes.end(), std::string("unjudgeable: ") + row.note) !=
            decision.notes.end());
    }
    // What they run is judged where it can be: a refused program behind a wrapper is refused.
    CHECK(policy.decide(req("twin-aegis", "env", {"rm", "-rf", "/"})).rule == "always_refused[rm]");
    CHECK(policy.decide(req("twin-aegis", "busybox", {"reboot"})).rule == "always_refused[reboot]");
    CHECK(policy.decide(req("twin-aegis", "find", {"/", "-exec", "/bin/rm", "{}", "+"})).rule == "always_refused[rm]");
    CHECK(policy.decide(req("twin-aegis", "xargs", {"-0", "shutdown"})).rule == "always_refused[shutdown]");
  }

  TEST_CASE("a catalog tool that maps to a refused program is refused: always_refused and a twin's deny") {
    auto spec = PolicySpec::seed_default();
    spec.twins["t"] = {.allow = {"*"}, .deny = {"curl", "wget"}};
    const auto policy = Policy::make(spec);
    REQUIRE(policy);
    auto catalog = pagi_exec::ToolCatalog::seed_default();
    catalog.tools["fetch"] = {.kind = pagi_exec::ToolKind::program, .program = "/usr/bin/curl"};
    catalog.tools["download"] = {.kind = pagi_exec::ToolKind::program, .program = "wget"};
    catalog.tools["tidy"] = {.kind = pagi_exec::ToolKind::program, .program = "/bin/rm", .args = {"-f"}};
    catalog.tools["run"] = {.kind = pagi_exec::ToolKind::program, .program = "/bin/sh", .args = {"-c"}};
    const auto decide = [&](const char* tool, std::vector<std::string> args = {}) {
      const auto command = pagi_exec::Command::make(req("t", tool, std::move(args)), catalog);
      REQUIRE(command);
      return policy->decide(*command);
    };
    CHECK(decide("fetch").rule == "twins.t.deny[curl]");
    CHECK(decide("fetch").reason == "twin 't' is refused 'curl', which command 'fetch' runs");
    CHECK(decide("download").rule == "twins.t.deny[wget]");
    CHECK(decide("tidy", {"x"}).rule == "always_refused[rm]");
    CHECK(decide("tidy", {"x"}).reason == "command 'tidy' runs '/bin/rm' (program 'rm'), which is always refused");
    CHECK(decide("run", {"curl -o x http://example.com"}).rule == "twins.t.deny[curl]");
    CHECK(decide("run", {"ls"}).allowed);
    // Another twin without that deny entry may use it.
    CHECK(pagi_exec::Command::make(req("twin-aegis", "fetch"), catalog).map([&](const pagi_exec::Command& c) {
      return policy->decide(c).allowed;
    }).value_or(false));
  }

  TEST_CASE("a policy file's deny list catches a [tools.X] that maps to a denied program") {
    const auto file = pagi_exec::parse_policy(R"(
always_refused = ["rm"]
[tools.fetch]
program = "/usr/bin/curl"
[twins.t]
allow = ["fetch", "*"]
deny = ["curl"]
[twins.u]
allow = ["fetch"]
)",
                                              "deny.toml");
    REQUIRE(file);
    const auto decide = [&](const char* twin) {
      const auto command = pagi_exec::Command::make(req(twin, "fetch"), file->catalog);
      REQUIRE(command);
      return file->policy.decide(*command);
    };
    CHECK_FALSE(decide("t").allowed);
    CHECK(decide("t").rule == "twins.t.deny[curl]");
    CHECK(decide("u").allowed);
  }

  TEST_CASE("reasons quote at most 200 bytes of a tool, whatever its length") {
    const auto policy = Policy::seed_default();
    const auto decision = policy.decide(req("twin-sentinel", std::string(100000, 'x')));
    CHECK_FALSE(decision.allowed);
    CHECK(decision.reason.size() < 400);
    CHECK(decision.reason.find("(100000 bytes)") != std::string::npos);
  }
}
