// SPDX-License-Identifier: Apache-2.0
// Policy files: the example equals the built-in seed, good files load, bad ones say where and why.
#include <doctest/doctest.h>

#include <pagi_exec/policy_file.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

using namespace pagi_exec;

namespace {
Request req(std::string twin, std::string tool, std::vector<std::string> args = {}) {
  return Request{.tool = std::move(tool), .args = std::move(args), .twin_id = std::move(twin)};
}

std::filesystem::path example_file() {
  const char* dir = std::getenv("PAGI_EXEC_EXAMPLES");
  REQUIRE_MESSAGE(dir != nullptr, "PAGI_EXEC_EXAMPLES is set by tests/meson.build");
  return std::filesystem::path(dir) / "policy.toml";
}

constexpr const char* full_file = R"(safe_mode = true
always_refused = ["rm", "/sbin/reboot"]

[safe_mode_limits]
timeout_ms = 5000
memory_mb = 128

[twins.builder]
allow = ["make", "command_exec", "/usr/bin/git"]
deny = ["curl"]
network = "egress"
allow_domains = ["pypi.org", "*.PythonHosted.org.", "api.example.com:8443"]
deny_domains = ["bad.pythonhosted.org"]

[twins.builder.limits]
timeout_ms = 60000
max_processes = 64
output_bytes = 65536
output_lines = 1000

[twins.reader]
allow = ["cat"]

[tools.git_status]
program = "/usr/bin/git"
args = ["status", "--short"]

[tools.vector_query]
program = "/opt/pagi/bin/vq"
)";
}  // namespace

TEST_SUITE("policy_file") {
  TEST_CASE("the example file decides exactly as the built-in seed policy") {
    const auto loaded = load_policy_file(example_file());
    REQUIRE_MESSAGE(loaded, (loaded ? "" : loaded.error().message()));
    CHECK(loaded->catalog == ToolCatalog::seed_default());
    auto spec = loaded->policy.spec();
    CHECK(spec.revision.size() == 12);
    spec.revision = PolicySpec::seed_default().revision;
    CHECK(spec == PolicySpec::seed_default());

    const Request requests[] = {
        req("twin-aegis", "echo"), req("twin-aegis", "command_exec", {"ls; rm -rf ~"}),
        req("twin-aegis", "/bin/rm"), req("twin-sentinel", "file_write"), req("twin-sentinel", "echo"),
        req("twin-sentinel", "command_exec", {"echo $(date)"}), req("twin-sentinel", "command_exec", {"reboot"}),
        req("twin-trace", "vector_query"), req("twin-trace", "command_exec", {"ls"}), req("nobody", "ls"),
        req("", "ls"), req("twin-aegis", ""), req("twin-aegis", "../../sbin/shutdown"),
    };
    const auto seed = Policy::seed_default();
    for (const bool safe : {false, true}) {
      for (const auto& r : requests) {
        CAPTURE(safe);
        CAPTURE(r.twin_id);
        CAPTURE(r.tool);
        CHECK(loaded->policy.with_safe_mode(safe).decide(r) == seed.with_safe_mode(safe).decide(r));
      }
    }
  }

  TEST_CASE("a file using every key loads into the matching spec and catalog") {
    const auto loaded = parse_policy(full_file, "full.toml");
    REQUIRE_MESSAGE(loaded, (loaded ? "" : loaded.error().message()));
    const auto& spec = loaded->policy.spec();
    CHECK(spec.safe_mode);
    CHECK(spec.always_refused == std::vector<std::string>{"rm", "/sbin/reboot"});
    CHECK(spec.safe_mode_limits ==
          TwinLimits{.timeout = std::chrono::milliseconds(5000), .memory_bytes = std::uint64_t{128} << 20});
    const auto& builder = spec.twins.at("builder");
    CHECK(builder.allow == std::vector<std::string>{"make", "command_exec", "/usr/bin/git"});
    CHECK(builder.deny == std::vector<std::string>{"curl"});
    CHECK(builder.network == NetworkAccess::egress);
    CHECK(builder.allow_domains == std::vector<DomainPattern>{{.name = "pypi.org"},
                                                              {.name = "pythonhosted.org", .wildcard = true},
                                                              {.name = "api.example.com", .port = 8443}});
    CHECK(builder.deny_domains == std::vector<DomainPattern>{{.name = "bad.pythonhosted.org"}});
    CHECK(builder.limits == TwinLimits{.timeout = std::chrono::milliseconds(60000), .max_processes = 64,
                                       .output_bytes = 65536, .output_lines = 1000});
    CHECK(spec.twins.at("reader") == TwinGrants{.allow = {"cat"}});

    const auto* git = loaded->catalog.find("git_status");
    REQUIRE(git != nullptr);
    CHECK(*git == ToolEntry{.kind = ToolKind::program, .program = "/usr/bin/git", .args = {"status", "--short"}});
    const auto* vq = loaded->catalog.find("vector_query");
    REQUIRE(vq != nullptr);
    CHECK(vq->kind == ToolKind::program);
    CHECK(loaded->catalog.find("command_exec")->kind == ToolKind::shell_bridge);

    // Safe mode from the file: the limits are capped, the network withheld.
    const auto decision = loaded->policy.decide(req("builder", "make"));
    CHECK(decision.allowed);
    CHECK(decision.limits.timeout == std::chrono::milliseconds(5000));
    CHECK(decision.limits.memory_bytes == std::uint64_t{128} << 20);
    CHECK(decision.limits.max_processes == 64U);
    CHECK(decision.network == NetworkAccess::none);
    CHECK(loaded->policy.with_safe_mode(false).decide(req("builder", "make")).network == NetworkAccess::egress);
  }

  TEST_CASE("the revision is 12 hex digits of the text's hash and follows the text") {
    const auto a = parse_policy("safe_mode = false\n", "a.toml");
    const auto b = parse_policy("safe_mode = false # comment\n", "b.toml");
    REQUIRE(a);
    REQUIRE(b);
    CHECK(a->policy.revision().size() == 12);
    CHECK(a->policy.revision().find_first_not_of("0123456789abcdef") == std::string::npos);
    CHECK(a->policy.revision() != b->policy.revision());
    CHECK(parse_policy("safe_mode = false\n", "other-name.toml")->policy.revision() == a->policy.revision());
    CHECK(parse_policy("", "empty.toml")->policy.revision() == "cbf29ce48422");  // FNV-1a 64 of ""
  }

  TEST_CASE("an empty file is a valid policy that allows nothing") {
    const auto loaded = parse_policy("", "empty.toml");
    REQUIRE(loaded);
    CHECK_FALSE(loaded->policy.decide(req("twin-aegis", "echo")).allowed);
    CHECK(loaded->catalog == ToolCatalog::seed_default());
  }

  TEST_CASE("bad files are refused with file:line:column, what is wrong and how to fix it") {
    struct Row {
      const char* text;
      const char* where;  // "bad.toml:<line>:<column>: "
      const char* says;   // a part of the message
    };
    const Row rows[] = {
        {"safe_mod = true", "bad.toml:1:1: ", "unknown key 'safe_mod' in the top-level table; did you mean 'safe_mode'?"},
        {"safe_mode = \"true\"", "bad.toml:1:13: ", "safe_mode must be a boolean, not a string; write safe_mode = true"},
        {"safe_mode = true\nsafe_mode = false", "bad.toml:2:", "invalid TOML"},
        {"safe_mode =", "bad.toml:1:", "invalid TOML"},
        {"always_refused = \"rm\"", "bad.toml:1:18: ", "always_refused must be an array of strings, not a string"},
        {"always_refused = [\"rm\", 1]", "bad.toml:1:25: ", "always_refused[1] must be a string, not an integer"},
        {"always_refused = [\"rm\", \"*\"]", "bad.toml:1:25: ", "always_refused[1] '*' is '*'"},
        {"always_refused = [\"/\"]", "bad.toml:1:19: ", "always_refused[0] '/' names no program"},
        {"always_refused = [\"rm\", \"rm\"]", "bad.toml:1:25: ", "'rm' is listed twice in always_refused"},
        {"twins = 3", "bad.toml:1:9: ", "twins must be a table, not an integer"},
        {"[twins]\ntwin-a = 1", "bad.toml:2:10: ", "twins.twin-a must be a table, not an integer"},
        {"[twins.a]\n[twins.a]", "bad.toml:2:", "invalid TOML"},
        {"[twins.twin-a]\nalow = [\"ls\"]", "bad.toml:2:1: ",
         "unknown key 'alow' in [twins.twin-a]; did you mean 'allow'? the keys here are allow, deny, network, "
         "allow_domains, deny_domains, limits"},
        {"[twins.twin-a]\nallow = [\"\"]", "bad.toml:2:10: ", "twins.twin-a.allow[0] '' is empty"},
        {"[twins.twin-a]\nallow = [\"ls \"]", "bad.toml:2:10: ", "starts or ends with a space"},
        {"[twins.twin-a]\nallow = [\"ls\", \"ls\"]", "bad.toml:2:16: ", "'ls' is listed twice in twins.twin-a.allow"},
        {"[twins.twin-a]\ndeny = [\"*\"]", "bad.toml:2:9: ", "twins.twin-a.deny[0] '*' is '*'"},
        {"[twins.twin-a]\nnetwork = \"yes\"", "bad.toml:2:11: ",
         "twins.twin-a.network must be \"none\", \"egress\" or \"host\", not 'yes'"},
        {"[twins.twin-a]\nnetwork = 1", "bad.toml:2:11: ", "twins.twin-a.network must be \"none\", \"egress\" or \"host\", not an integer"},
        {"[twins.twin-a]\nnetwork = true", "bad.toml:2:11: ",
         "twins.twin-a.network = true is the old boolean form; write network = \"egress\" with allow_domains"},
        {"[twins.twin-a]\nnetwork = false", "bad.toml:2:11: ",
         "twins.twin-a.network = false is the old boolean form; write network = \"none\", or remove the key"},
        {"[twins.twin-a]\nnetwork = \"egress\"", "bad.toml:1:1: ",
         "twins.twin-a: network = \"egress\" needs allow_domains"},
        {"[twins.twin-a]\nallow_domains = [\"pypi.org\"]", "bad.toml:1:1: ",
         "twins.twin-a: allow_domains and deny_domains apply only with network = \"egress\" (network is \"none\")"},
        {"[twins.twin-a]\nnetwork = \"egress\"\nallow_domains = \"pypi.org\"", "bad.toml:3:17: ",
         "twins.twin-a.allow_domains must be an array of strings, not a string"},
        {"[twins.twin-a]\nnetwork = \"egress\"\nallow_domains = [\"https://pypi.org/simple\"]", "bad.toml:3:18: ",
         "twins.twin-a.allow_domains[0]: domain \"https://pypi.org/simple\": write a host name, not a URL"},
        {"[twins.twin-a]\nnetwork = \"egress\"\nallow_domains = [\"pypi.org/simple\"]", "bad.toml:3:18: ",
         "write a host name, not a URL"},
        {"[twins.twin-a]\nnetwork = \"egress\"\nallow_domains = [\"*.org\"]", "bad.toml:3:18: ",
         "would match a whole top-level domain"},
        {"[twins.twin-a]\nnetwork = \"egress\"\nallow_domains = [\"a.*.org\"]", "bad.toml:3:18: ",
         "'*' may only open a pattern"},
        {"[twins.twin-a]\nnetwork = \"egress\"\nallow_domains = [\"pypi.org:0\"]", "bad.toml:3:18: ",
         "the port after ':' must be a number from 1 to 65535"},
        {"[twins.twin-a]\nnetwork = \"egress\"\nallow_domains = [\"x.org\", \"X.org\"]", "bad.toml:3:27: ",
         "'X.org' is listed twice in twins.twin-a.allow_domains"},
        {"[twins.twin-a]\nnetwork = \"egress\"\nallow_domains = [\"[::1]:443\"]", "bad.toml:3:18: ",
         "IPv6 literals are not supported"},
        {"[twins.twin-a]\nnetwork = \"egress\"\nallow_domains = [\"x.org\"]\ndeny_domains = [3]", "bad.toml:4:17: ",
         "twins.twin-a.deny_domains[0] must be a string, not an integer"},
        {"[twins.\".hidden\"]", "bad.toml:1:8: ", "twin id '.hidden' starts with '.'"},
        {"[twins.\"\"]", "bad.toml:1:8: ", "twin id '' is empty; a twin id must be one path component"},
        {"[twins.\"a/b\"]", "bad.toml:1:8: ", "twin id 'a/b' contains '/'"},
        {"[twins.\"-rf\"]", "bad.toml:1:8: ", "twin id '-rf' starts with '-'"},
        {"[twins.\"twin \"]", "bad.toml:1:8: ", "twin id 'twin ' starts or ends with a space"},
        {"[twins.a.limits]\ntimeout_ms = 0", "bad.toml:2:14: ",
         "twins.a.limits.timeout_ms is 0, outside 1-86400000; write a value in that range, or remove the key"},
        {"[twins.a.limits]\ntimeout_ms = 1.5", "bad.toml:2:14: ",
         "twins.a.limits.timeout_ms must be a positive integer, not a floating-point number"},
        {"[twins.a.limits]\nmemory_mb = -1", "bad.toml:2:13: ", "twins.a.limits.memory_mb is -1, outside 1-1048576"},
        {"[twins.a.limits]\ntimeout = 5", "bad.toml:2:1: ", "unknown key 'timeout' in [twins.a.limits]; did you mean 'timeout_ms'?"},
        {"[twins.a]\nlimits = 5", "bad.toml:2:10: ", "twins.a.limits must be a table, not an integer"},
        {"[safe_mode_limits]\nmax_procs = 3", "bad.toml:2:1: ", "unknown key 'max_procs' in [safe_mode_limits]"},
        {"[safe_mode_limits]\nmax_processes = 99999999", "bad.toml:2:17: ", "outside 1-4194304"},
        {"[tools.command_exec]\nprogram = \"/bin/sh\"", "bad.toml:1:8: ", "tool 'command_exec' is built in and cannot be redefined"},
        {"[tools.file_write]\nprogram = \"/bin/tee\"", "bad.toml:1:8: ", "tool 'file_write' is built in"},
        {"[tools.x]\nprogram = \"bin/x\"", "bad.toml:2:11: ", "tools.x.program 'bin/x' is not an absolute path; write the program's absolute path"},
        {"[tools.x]\nprogram = 3", "bad.toml:2:11: ", "tools.x.program must be a string, not an integer"},
        {"[tools.x]\nargs = []", "bad.toml:1:1: ", "tools.x has no program; add program ="},
        {"always_refused = [\"rm\"]\n[tools.x]\nprogram = \"/usr/bin/rm\"", "bad.toml:3:11: ",
         "tools.x.program '/usr/bin/rm' is always refused"},
        {"[tools.x]\nprogram = \"/bin/x\"\nargs = \"-v\"", "bad.toml:3:8: ", "tools.x.args must be an array of strings"},
        {"[tools.x]\nprogram = \"/bin/x\"\nargs = [1]", "bad.toml:3:9: ", "tools.x.args[0] must be a string"},
        {"[tools.x]\nprogram = \"/bin/x\"\nextra = 1", "bad.toml:3:1: ", "unknown key 'extra' in [tools.x]"},
        {"[tools.\"a/b\"]\nprogram = \"/bin/x\"", "bad.toml:1:8: ", "tool name 'a/b' contains '/'"},
        {"[tools.\"*\"]\nprogram = \"/bin/x\"", "bad.toml:1:8: ", "tool name '*' is '*', which is not a tool"},
        {"[tools.\"\"]\nprogram = \"/bin/x\"", "bad.toml:1:8: ", "tool name '' is empty"},
        {"tools = []", "bad.toml:1:9: ", "tools must be a table, not an array"},
    };
    for (const auto& row : rows) {
      CAPTURE(row.text);
      const auto parsed = parse_policy(row.text, "bad.toml");
      REQUIRE_FALSE(parsed);
      const auto message = parsed.error().message();
      CAPTURE(message);
      CHECK(parsed.error().code == Errc::invalid_config);
      CHECK(message.rfind(row.where, 0) == 0);
      CHECK(message.find(row.says) != std::string::npos);
      CHECK(message.find("; ") != std::string::npos);  // every message says how to fix it
    }
  }

  TEST_CASE("load_policy_file says which file it could not read") {
    const auto missing = load_policy_file("/nonexistent/pagi/policy.toml");
    REQUIRE_FALSE(missing);
    CHECK(missing.error().code == Errc::invalid_config);
    CHECK(missing.error().message() == "cannot read policy file /nonexistent/pagi/policy.toml: No such file or directory");
    const auto directory = load_policy_file(example_file().parent_path());
    REQUIRE_FALSE(directory);
    CHECK(directory.error().message().find("cannot read policy file") == 0);
  }
}
