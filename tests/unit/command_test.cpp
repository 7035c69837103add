// SPDX-License-Identifier: Apache-2.0
// Command: one normalised form of a request, judged by the policy and run by the launcher.
#include <doctest/doctest.h>

#include <algorithm>
#include <mutex>
#include <optional>
#include <random>

#include "test_support.hpp"

using namespace pagi_exec;
using test_support::TempDir;
using namespace std::string_literals;

namespace {

// Records every plan it is asked to start; starts nothing.
class RecordingSpawner final : public Spawner {
 public:
  Result<ProcessResult> spawn(const LaunchPlan& plan, std::stop_token, const OutputSink&) const override {
    std::lock_guard lock(mutex_);
    argvs_.push_back(plan.argv);
    return ProcessResult{};
  }
  [[nodiscard]] std::vector<std::vector<std::string>> argvs() const {
    std::lock_guard lock(mutex_);
    return argvs_;
  }

 private:
  mutable std::mutex mutex_;
  mutable std::vector<std::vector<std::string>> argvs_;
};

// Records every decision the executor reports.
class RecordingAudit final : public AuditSink {
 public:
  Result<void> decided(const Request& request, const Outcome& outcome) override {
    std::lock_guard lock(mutex_);
    decisions_.emplace_back(request, outcome.decision);
    return {};
  }
  Result<void> finished(const Request&, const Outcome&) override { return {}; }
  [[nodiscard]] std::vector<std::pair<Request, Decision>> decisions() const {
    std::lock_guard lock(mutex_);
    return decisions_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::pair<Request, Decision>> decisions_;
};

// The seed policy and catalog, plus a twin granted shells and interpreters by name and catalog
// tools that map to programs the policy refuses.
PolicySpec test_policy() {
  auto spec = PolicySpec::seed_default();
  spec.twins["twin-granted"] = {.allow = {"sh", "bash", "/bin/sh", "/usr/bin/bash", "dash", "echo", "zap", "lister",
                                          "fetch", "python3", "env", "find", "xargs", "busybox"},
                                .deny = {"curl"}};
  return spec;
}

ToolCatalog test_catalog() {
  auto catalog = ToolCatalog::seed_default();
  catalog.tools["zap"] = {.kind = ToolKind::program, .program = "/bin/rm"};
  catalog.tools["lister"] = {.kind = ToolKind::program, .program = "/bin/ls", .args = {"-la"}};
  catalog.tools["fetch"] = {.kind = ToolKind::program, .program = "/usr/bin/curl"};
  catalog.tools["shell"] = {.kind = ToolKind::program, .program = "/bin/sh", .args = {"-c"}};
  return catalog;
}

struct Fixture {
  TempDir dir;
  std::shared_ptr<RecordingSpawner> spawner = std::make_shared<RecordingSpawner>();
  std::shared_ptr<RecordingAudit> audit = std::make_shared<RecordingAudit>();
  Executor executor;

  explicit Fixture(Isolation isolation = Isolation::cwd, RequestLimits limits = {})
      : executor(make(dir.path(), spawner, audit, isolation, limits)) {}

  static Executor make(const std::filesystem::path& root, std::shared_ptr<RecordingSpawner> spawner,
                       std::shared_ptr<RecordingAudit> audit, Isolation isolation, RequestLimits limits) {
    auto sandbox = Sandbox::make({.root_dir = root / "sb", .isolation = isolation});
    REQUIRE(sandbox);
    auto policy = Policy::make(test_policy());
    REQUIRE(policy);
    auto executor = Executor::open({.policy = *policy, .sandbox = *sandbox, .catalog = test_catalog(),
                                    .spawner = std::move(spawner), .audit = std::move(audit),
                                    .request_limits = limits});
    REQUIRE(executor);
    return *executor;
  }
};

bool has_nul(const Request& r) {
  const auto nul = [](const std::string& s) { return s.find('\0') != std::string::npos; };
  return nul(r.tool) || nul(r.twin_id) || nul(r.job_id) || std::any_of(r.args.begin(), r.args.end(), nul);
}

bool always_refused(std::string_view word) {
  const auto& names = PolicySpec::seed_default().always_refused;
  return std::find(names.begin(), names.end(), program_name(word)) != names.end();
}

template <class T>
const T& pick(std::mt19937& rng, const std::vector<T>& from) {
  return from[std::uniform_int_distribution<std::size_t>(0, from.size() - 1)(rng)];
}

bool chance(std::mt19937& rng, int percent) { return std::uniform_int_distribution<int>(0, 99)(rng) < percent; }

std::string with_nul_somewhere(std::mt19937& rng, std::string s) {
  s.insert(std::uniform_int_distribution<std::size_t>(0, s.size())(rng), 1, '\0');
  return s;
}

// A request as a hostile or careless agent might send it.
Request random_request(std::mt19937& rng) {
  static const std::vector<std::string> names = {
      "rm", "ls", "echo", "true", "sh", "bash", "dash", "cat", "env", "python3", "find", "xargs", "busybox",
      "reboot", "shutdown", "curl", "no-such-program-x", "command_exec", "file_write", "vector_query", "zap",
      "lister", "fetch", "shell", "r\xC3\xA9m", "rm\xE2\x80\x8B", "\xE2\x80\xAErm", ""};
  static const std::vector<std::string> prefixes = {"", "", "", "/bin/", "//bin///", "/usr/bin/", "./",
                                                    "../../bin/", "/usr//bin/", "/"};
  static const std::vector<std::string> args = {
      "-c", "-ec", "-e", "-la", "rm -rf /", "ls; reboot", "$(rm x)", "`shutdown`", "x", "", "a b",
      "\xC3\xA9", "sudo rm -rf ~", "python3 -c 'import os'", "{}", ";", "-exec", "-delete", "rm", ".",
      "eval 'reboot'", "echo ok", "\xFF\xFE", "X=1", "--", "\n"};
  static const std::vector<std::string> twins = {"twin-aegis", "twin-sentinel", "twin-trace", "twin-granted",
                                                 "nobody", ""};
  Request r;
  r.tool = pick(rng, names);
  if (r.tool.find('_') == std::string::npos && chance(rng, 50)) r.tool = pick(rng, prefixes) + r.tool;
  if (chance(rng, 5)) r.tool += "/";
  const auto argc = std::uniform_int_distribution<int>(0, 4)(rng);
  for (int i = 0; i < argc; ++i) r.args.push_back(pick(rng, args));
  r.twin_id = pick(rng, twins);
  r.job_id = chance(rng, 50) ? "job-" + std::to_string(rng() % 100) : "";
  // Now and then a NUL byte, in any field a C string would cut.
  if (chance(rng, 8)) r.tool = with_nul_somewhere(rng, r.tool);
  if (chance(rng, 5) && !r.args.empty()) r.args.back() = with_nul_somewhere(rng, r.args.back());
  if (chance(rng, 3)) r.twin_id = with_nul_somewhere(rng, r.twin_id);
  if (chance(rng, 3)) r.job_id = with_nul_somewhere(rng, r.job_id);
  return r;
}

}  // namespace

TEST_SUITE("command") {
  TEST_CASE("a NUL byte in command, args, twin_id or job_id is refused before anything runs, naming the field") {
    struct Row {
      Request request;
      const char* field;
    };
    const Row rows[] = {
        {{.tool = "/bin/rm\0"s, .args = {"-rf", "x"}, .twin_id = "twin-aegis"}, "command"},
        {{.tool = "rm\0"s, .twin_id = "twin-aegis"}, "command"},
        {{.tool = "/bin/rm\0x"s, .twin_id = "twin-aegis"}, "command"},
        {{.tool = "command_exec", .args = {"reboot\0 now"s}, .twin_id = "twin-aegis"}, "args[0]"},
        {{.tool = "echo", .args = {"a", "b\0c"s}, .twin_id = "twin-aegis"}, "args[1]"},
        {{.tool = "echo", .twin_id = "twin-aegis\0x"s}, "twin_id"},
        {{.tool = "echo", .twin_id = "twin-aegis", .job_id = "job\0"s}, "job_id"},
    };
    Fixture f;
    for (const auto& row : rows) {
      CAPTURE(row.field);
      const auto command = Command::make(row.request, test_catalog());
      REQUIRE_FALSE(command);
      CHECK(command.error().code == Errc::invalid_request);
      CHECK(command.error().message().rfind(std::string(row.field) + " contains a NUL byte", 0) == 0);

      const auto decision = Policy::seed_default().decide(row.request);
      CHECK_FALSE(decision.allowed);
      CHECK(decision.rule == invalid_request_rule);

      // Answered in-band as a usage error (exit 2), the reason naming the field.
      const auto outcome = f.executor.run(row.request);
      REQUIRE(outcome);
      CHECK(outcome->decision.is_invalid_request());
      CHECK_FALSE(outcome->ran);
      CHECK(outcome->exit_code == exit_usage);
      CHECK(outcome->message.find(row.field) != std::string::npos);
      CHECK(outcome->err.lines == std::vector<std::string>{outcome->message});
      // Recorded as a refusal, in the history and in the audit.
      const auto record = f.executor.history().query({.page_size = 1})->records.at(0);
      CHECK_FALSE(record.allowed);
      CHECK_FALSE(record.ran);
      CHECK(record.rule == invalid_request_rule);
      CHECK(record.reason.rfind(std::string(row.field) + " contains a NUL byte", 0) == 0);
      const auto audited = f.audit->decisions().back().second;
      CHECK_FALSE(audited.allowed);
      CHECK(audited.rule == invalid_request_rule);
      CHECK(f.executor.check(row.request).rule == invalid_request_rule);
    }
    CHECK(f.spawner->argvs().empty());
  }

  TEST_CASE("namespace and metadata may hold NUL bytes: they are recorded, never passed as C strings") {
    const Request request{.tool = "echo", .twin_id = "twin-aegis", .ns = "n\0s"s, .metadata = {{"k\0"s, "v\0"s}}};
    const auto command = Command::make(request, test_catalog());
    REQUIRE(command);
    CHECK(command->argv().size() == 1);
  }

  TEST_CASE("requests beyond the argument and byte limits are answered exit 2 before they are judged") {
    const RequestLimits limits{.max_args = 8, .max_request_bytes = 4096};
    Fixture f(Isolation::cwd, limits);
    const Request many{.tool = "echo", .args = std::vector<std::string>(9, "x"), .twin_id = "twin-aegis"};
    const Request big{.tool = "command_exec", .args = {std::string(5000, 'a')}, .twin_id = "twin-aegis"};
    const Request big_id{.tool = "echo", .twin_id = "twin-aegis", .job_id = std::string(5000, 'j')};
    for (const auto* request : {&many, &big, &big_id}) {
      const auto outcome = f.executor.run(*request);
      REQUIRE(outcome);
      CHECK(outcome->exit_code == exit_usage);
      CHECK(outcome->decision.is_invalid_request());
      CHECK(f.executor.check(*request).rule == invalid_request_rule);
    }
    CHECK(f.executor.run(many)->message == "the request has 9 args; at most 8 are accepted (TOOLS_MAX_ARGS)");
    CHECK(f.executor.run(big)->message.find("at most 4096 are accepted (TOOLS_MAX_REQUEST_BYTES)") !=
          std::string::npos);
    CHECK(f.spawner->argvs().empty());
    // At the limits exactly, it runs.
    const Request at_limit{.tool = "echo", .args = std::vector<std::string>(8, std::string(100, 'x')),
                           .twin_id = "twin-aegis"};
    REQUIRE(f.executor.run(at_limit));
    CHECK(f.spawner->argvs().size() == 1);
    // What the history keeps of a refused big request is a bounded prefix, and says so.
    const Fixture roomy(Isolation::cwd, {.max_args = 1000, .max_request_bytes = 1ULL << 20});
    const Request huge{.tool = "reboot", .args = std::vector<std::string>(100, std::string(10000, 'z')),
                       .twin_id = "twin-aegis"};
    REQUIRE(roomy.executor.run(huge));
    const auto record = roomy.executor.history().query({.page_size = 1})->records.at(0);
    CHECK(record.arg_count == 100);
    CHECK(record.args_truncated);
    std::size_t kept = 0;
    for (const auto& arg : record.args) kept += arg.size();
    CHECK(kept <= max_recorded_args_bytes);
    CHECK(kept > 0);
  }

  TEST_CASE("what the policy judged is exactly what the spawner received: 4000 random requests") {
    std::mt19937 rng(8);
    for (const auto isolation : {Isolation::cwd, Isolation::bwrap}) {
      CAPTURE(to_string(isolation));
      Fixture f(isolation);
      int spawned = 0;
      int refused = 0;
      for (int i = 0; i < 2000; ++i) {
        const auto request = random_request(rng);
        CAPTURE(i);
        CAPTURE(request.tool);
        std::optional<std::pair<std::vector<std::string>, Decision>> judged;
        const RunHooks hooks{.decided = [&](const Command& command, const Decision& decision) {
          REQUIRE_FALSE(judged);  // judged once
          judged.emplace(command.argv(), decision);
        }};
        const auto before = f.spawner->argvs().size();
        const auto outcome = f.executor.run(request, {}, hooks);
        const auto argvs = f.spawner->argvs();
        const bool spawned_now = argvs.size() > before;
        if (has_nul(request)) {  // answered before anything judged it
          REQUIRE(outcome);
          CHECK(outcome->exit_code == exit_usage);
          CHECK_FALSE(judged);
          CHECK_FALSE(spawned_now);
          CHECK(f.executor.history().query({.page_size = 1})->records.at(0).rule == invalid_request_rule);
          ++refused;
          continue;
        }
        REQUIRE(judged);
        if (outcome) CHECK(outcome->decision == judged->second);
        if (!judged->second.allowed) {
          CHECK_FALSE(spawned_now);
          ++refused;
          continue;
        }
        if (!spawned_now) continue;  // allowed, but not a program that exists, or a built-in
        ++spawned;
        const auto& ran = argvs.back();
        const auto& want = judged->first;
        REQUIRE(ran.size() >= want.size());
        // cwd: the argv itself; bwrap: bwrap's options, "--", then exactly the judged argv (a
        // program behind the fixed `/bin/sh -c 'exec "$0" "$@"'` that answers 126/127).
        CHECK(std::equal(want.begin(), want.end(), ran.end() - static_cast<std::ptrdiff_t>(want.size())));
        if (isolation == Isolation::cwd) CHECK(ran == want);
        if (isolation == Isolation::bwrap) {
          const auto before_want = ran.end() - static_cast<std::ptrdiff_t>(want.size());
          const bool bridge = want.front() == "/bin/sh" && want.size() > 3 && want[3] == "command_exec";
          if (bridge) {
            CHECK(*(before_want - 1) == "--");
          } else {
            CHECK(std::vector<std::string>(before_want - 4, before_want) ==
                  std::vector<std::string>{"--", "/bin/sh", "-c", "exec \"$0\" \"$@\""});
          }
        }
        // An oracle apart from the policy: nothing that ran names a refused program, not even
        // inside a shell line handed to sh -c.
        CHECK_FALSE(always_refused(want.front()));
        for (const auto& word : scan_argv(want).command_words) CHECK_FALSE(always_refused(word));
      }
      MESSAGE(std::string(to_string(isolation)) << ": " << spawned << " spawned, " << refused << " refused of 2000");
      CHECK(spawned > 100);
      CHECK(refused > 100);
    }
  }

  TEST_CASE("a bare program name is resolved once, and that path is what is judged and run") {
    const auto command = Command::make({.tool = "ls", .args = {"-l"}, .twin_id = "twin-aegis"}, test_catalog());
    REQUIRE(command);
    CHECK(command->lookup() == ProgramLookup::found);
    CHECK(command->argv().front().front() == '/');
    CHECK(program_name(command->argv().front()) == "ls");
    CHECK(command->argv().back() == "-l");
    const auto missing = Command::make({.tool = "no-such-program-x", .twin_id = "twin-aegis"}, test_catalog());
    REQUIRE(missing);
    CHECK(missing->lookup() == ProgramLookup::missing);
    const auto spelled = Command::make({.tool = "//bin///rm", .twin_id = "twin-aegis"}, test_catalog());
    REQUIRE(spelled);
    CHECK(spelled->argv() == std::vector<std::string>{"//bin///rm"});
    CHECK(Policy::seed_default().decide(*spelled).rule == "always_refused[rm]");
  }
}
