// SPDX-License-Identifier: Apache-2.0
// Executor with a fake Spawner: what it plans, how it maps results, what it remembers.
#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <set>
#include <mutex>

#include "test_support.hpp"

using namespace pagi_exec;
using test_support::TempDir;

namespace {

// Records every plan and answers with a canned result.
class FakeSpawner final : public Spawner {
 public:
  explicit FakeSpawner(ProcessResult answer = {}) : answer_(std::move(answer)) {}
  Result<ProcessResult> spawn(const LaunchPlan& plan, std::stop_token, const OutputSink&) const override {
    std::lock_guard lock(mutex_);
    plans_.push_back(plan);
    cwd_existed_.push_back(std::filesystem::is_directory(plan.cwd));
    return answer_;
  }
  std::vector<LaunchPlan> plans() const {
    std::lock_guard lock(mutex_);
    return plans_;
  }
  bool cwd_existed(std::size_t i) const {
    std::lock_guard lock(mutex_);
    return cwd_existed_.at(i);
  }

 private:
  ProcessResult answer_;
  mutable std::mutex mutex_;
  mutable std::vector<LaunchPlan> plans_;
  mutable std::vector<bool> cwd_existed_;
};

struct Fixture {
  TempDir dir;
  std::shared_ptr<FakeSpawner> spawner;
  Executor executor;

  explicit Fixture(ProcessResult answer = {}, Isolation isolation = Isolation::cwd)
      : spawner(std::make_shared<FakeSpawner>(std::move(answer))),
        executor(make(dir.path(), spawner, isolation)) {}

  static Executor make(const std::filesystem::path& root, std::shared_ptr<FakeSpawner> spawner, Isolation isolation) {
    auto sandbox = Sandbox::make({.root_dir = root / "sb", .isolation = isolation,
                                  .limits = {.timeout = std::chrono::milliseconds(5000)}});
    REQUIRE(sandbox);
    auto executor = Executor::open({.sandbox = *sandbox, .spawner = std::move(spawner)});
    REQUIRE(executor);
    return *executor;
  }
};

bool has(const std::vector<std::string>& items, const std::string& item) {
  return std::find(items.begin(), items.end(), item) != items.end();
}

}  // namespace

TEST_SUITE("executor") {
  TEST_CASE("a refused request spawns nothing and is remembered") {
    Fixture f;
    const auto outcome = f.executor.run({.tool = "/bin/rm", .args = {"-rf", "/"}, .twin_id = "twin-aegis"});
    REQUIRE(outcome);
    CHECK_FALSE(outcome->decision.allowed);
    CHECK_FALSE(outcome->ran);
    CHECK_FALSE(outcome->success());
    CHECK(outcome->exit_code == 1);
    CHECK(outcome->message == outcome->decision.reason);
    CHECK(f.spawner->plans().empty());
    const auto history = f.executor.history().query({})->records;
    REQUIRE(history.size() == 1);
    CHECK_FALSE(history[0].allowed);
    CHECK(history[0].tool == "/bin/rm");
    CHECK(history[0].execution_id == outcome->execution_id);
  }

  TEST_CASE("refuse_then answers a request that will not run as run() does, once it is recorded; an allowed one it leaves") {
    Fixture f;
    const Request refused{.tool = "/bin/rm", .args = {"-rf", "/"}, .twin_id = "twin-aegis"};
    const Request invalid{.tool = "command_exec", .twin_id = "twin-sentinel"};
    for (const auto* request : {&refused, &invalid}) {
      CAPTURE(request->tool);
      const auto by_run = f.executor.run(*request);
      REQUIRE(by_run);
      std::optional<Result<Outcome>> answer;
      std::size_t records_when_answered = 0;
      CHECK(f.executor.refuse_then(*request, [&](Result<Outcome> result) {
        records_when_answered = f.executor.history().query({})->records.size();
        answer = std::move(result);
      }));
      REQUIRE(answer.has_value());  // the memory history keeps it before record_then returns
      REQUIRE(*answer);
      const auto& outcome = **answer;
      CHECK(outcome.decision == by_run->decision);
      CHECK(outcome.exit_code == by_run->exit_code);
      CHECK(outcome.message == by_run->message);
      CHECK(outcome.err.lines == by_run->err.lines);
      CHECK_FALSE(outcome.ran);
      CHECK(outcome.execution_id != by_run->execution_id);
      const auto newest = f.executor.history().query({.page_size = 1})->records.at(0);
      CHECK(newest.execution_id == outcome.execution_id);
      CHECK(newest.exit_code == outcome.exit_code);
      CHECK(records_when_answered == newest.sequence);  // answered once its record was in
    }
    const auto before = f.executor.history().query({})->records.size();
    bool called = false;
    CHECK_FALSE(f.executor.refuse_then({.tool = "command_exec", .args = {"true"}, .twin_id = "twin-sentinel"},
                                       [&](const Result<Outcome>&) { called = true; }));
    CHECK_FALSE(called);
    CHECK(f.spawner->plans().empty());
    CHECK(f.executor.history().query({})->records.size() == before);
  }

  TEST_CASE("the shell bridge runs args[0] with /bin/sh -c and passes the rest as $1...") {
    Fixture f;
    const auto outcome = f.executor.run(
        {.tool = "command_exec", .args = {"echo \"$1\"", "x y"}, .twin_id = "twin-sentinel", .job_id = "j1"});
    REQUIRE(outcome);
    CHECK(outcome->success());
    const auto plans = f.spawner->plans();
    REQUIRE(plans.size() == 1);
    CHECK(plans[0].argv == std::vector<std::string>{"/bin/sh", "-c", "echo \"$1\"", "command_exec", "x y"});
    CHECK(f.spawner->cwd_existed(0));
    CHECK(plans[0].cwd == f.dir.path() / "sb" / "twin-sentinel" / outcome->execution_id);
    f.executor.wait_for_cleanup();
    CHECK_FALSE(std::filesystem::exists(plans[0].cwd));  // removed after the response
    CHECK(f.executor.history().query({})->records.at(0).job_id == "j1");
  }

  TEST_CASE("a direct command is argv, resolved in the sandbox PATH, with a minimal environment") {
    Fixture f;
    ::setenv("PAGI_EXEC_TEST_SECRET", "hunter2", 1);
    const auto outcome = f.executor.run({.tool = "echo", .args = {"$HOME", ";", "ls"}, .twin_id = "twin-aegis"});
    REQUIRE(outcome);
    const auto plan = f.spawner->plans().at(0);
    CHECK(plan.argv.size() == 4);
    CHECK((plan.argv[0] == "/usr/bin/echo" || plan.argv[0] == "/usr/local/bin/echo" || plan.argv[0] == "/bin/echo"));
    CHECK(plan.argv[1] == "$HOME");
    CHECK(has(plan.env, "PATH=/usr/local/bin:/usr/bin:/bin"));
    CHECK(has(plan.env, "PAGI_WORKSPACE=" + (f.dir.path() / "sb" / "twin-aegis").string()));
    CHECK(has(plan.env, "PAGI_EXECUTION_ID=" + outcome->execution_id));
    for (const auto& var : plan.env) CHECK(var.find("hunter2") == std::string::npos);
    CHECK(plan.env.size() < 12);
  }

  TEST_CASE("unknown programs are 127 and non-executable ones 126, before anything runs") {
    Fixture f;
    auto missing = f.executor.run({.tool = "no-such-program-xyz", .twin_id = "twin-aegis"});
    REQUIRE(missing);
    CHECK(missing->exit_code == 127);
    CHECK(missing->message.find("program not found: no-such-program-xyz") != std::string::npos);
    CHECK(f.spawner->plans().empty());
  }

  TEST_CASE("a long program name is quoted in 256 bytes, not copied into the message and stderr") {
    Fixture f;
    const std::string name(1'000'000, 'x');  // within the request's 1 MiB
    auto missing = f.executor.run({.tool = name, .twin_id = "twin-aegis"});
    REQUIRE(missing);
    CHECK(missing->exit_code == 127);
    CHECK(missing->message.find("program not found: " + std::string(256, 'x') + "... (1000000 bytes)") == 0);
    CHECK(missing->message.size() < 512);
    REQUIRE(missing->err.lines.size() == 1);
    CHECK(missing->err.lines[0] == missing->message);
  }

  TEST_CASE("exec failures reported by the spawner map to 127 and 126") {
    Fixture enoent(ProcessResult{.exec_errno = ENOENT, .exit_code = 127});
    auto a = enoent.executor.run({.tool = "./missing", .twin_id = "twin-aegis"});
    REQUIRE(a);
    CHECK(a->exit_code == 127);
    CHECK_FALSE(a->ran);
    Fixture eacces(ProcessResult{.exec_errno = EACCES, .exit_code = 127});
    auto b = eacces.executor.run({.tool = "./script", .twin_id = "twin-aegis"});
    REQUIRE(b);
    CHECK(b->exit_code == 126);
    CHECK(b->message.find("cannot execute ./script") != std::string::npos);
  }

  TEST_CASE("a timeout is 124 with the exact message clients match on") {
    Fixture f(ProcessResult{.exit_code = 137, .signal = 9, .timed_out = true});
    const auto outcome = f.executor.run({.tool = "sleep", .args = {"100"}, .twin_id = "twin-aegis"});
    REQUIRE(outcome);
    CHECK(outcome->exit_code == 124);
    CHECK(outcome->timed_out);
    CHECK(outcome->message == "execution_timeout");
    CHECK_FALSE(outcome->success());
  }

  TEST_CASE("a timeout keeps its exact message when the run leaves the workspace over its quota") {
    // Writes past the quota into the twin's workspace (the working folder's parent), then times out.
    class Filler final : public Spawner {
     public:
      Result<ProcessResult> spawn(const LaunchPlan& plan, std::stop_token, const OutputSink&) const override {
        std::ofstream(plan.cwd.parent_path() / "big") << std::string(64 * 1024, 'x');
        return ProcessResult{.exit_code = 137, .signal = 9, .timed_out = true};
      }
    };
    TempDir dir;
    auto sandbox = Sandbox::make({.root_dir = dir.path() / "sb",
                                  .limits = {.timeout = std::chrono::milliseconds(5000), .workspace_bytes = 4096}});
    REQUIRE(sandbox);
    auto executor = Executor::open({.sandbox = *sandbox, .spawner = std::make_shared<Filler>()});
    REQUIRE(executor);
    const auto outcome = executor->run({.tool = "sleep", .args = {"100"}, .twin_id = "twin-aegis"});
    REQUIRE(outcome);
    CHECK(outcome->exit_code == exit_timeout);
    CHECK(outcome->message == timeout_message);
    CHECK(outcome->limit_hit == LimitHit::timeout);
    REQUIRE(outcome->workspace);
    CHECK(outcome->workspace->over_quota());
  }

  TEST_CASE("a signal is 128+N and named") {
    Fixture f(ProcessResult{.exit_code = 128 + 11, .signal = 11});
    const auto outcome = f.executor.run({.tool = "true", .twin_id = "twin-aegis"});
    REQUIRE(outcome);
    CHECK(outcome->exit_code == 139);
    CHECK(outcome->message == "Execution failed (exit_code=139, elapsed_ms=0); killed by signal 11 (SIGSEGV)");
  }

  TEST_CASE("truncation is reported in the message") {
    ProcessResult answer{.exit_code = 0};
    answer.out = {.lines = {"a"}, .truncated = true, .total_bytes = 999};
    Fixture f(answer);
    const auto outcome = f.executor.run({.tool = "true", .twin_id = "twin-aegis"});
    REQUIRE(outcome);
    CHECK(outcome->message == "Execution completed (elapsed_ms=0); stdout truncated (999 bytes written, 1 lines kept)");
  }

  TEST_CASE("the caller's deadline caps the time limit and never raises it") {
    Fixture f;
    REQUIRE(f.executor.run({.tool = "true", .twin_id = "twin-aegis", .timeout_cap = std::chrono::milliseconds(250)}));
    REQUIRE(f.executor.run({.tool = "true", .twin_id = "twin-aegis", .timeout_cap = std::chrono::hours(1)}));
    const auto plans = f.spawner->plans();
    CHECK(plans[0].limits.timeout == std::chrono::milliseconds(250));
    CHECK(plans[1].limits.timeout == std::chrono::milliseconds(5000));
  }

  TEST_CASE("vector_query has no program: 127 with a message saying so") {
    Fixture f;
    const auto outcome = f.executor.run({.tool = "vector_query", .args = {"q"}, .twin_id = "twin-trace"});
    REQUIRE(outcome);
    CHECK(outcome->exit_code == 127);
    CHECK(outcome->message.find("vector_query has no program") != std::string::npos);
    CHECK(f.spawner->plans().empty());
  }

  TEST_CASE("a call its tool cannot take is answered exit 2 with the reason, remembered, judged the same by check") {
    struct Row {
      Request request;
      const char* says;
    };
    const Row rows[] = {
        {{.tool = "command_exec", .twin_id = "twin-sentinel"}, "command_exec needs args[0]"},
        {{.tool = "file_write", .args = {"only-a-path"}, .twin_id = "twin-sentinel"}, "file_write needs exactly 2 arguments"},
        {{.tool = "file_write", .args = {"../up", "x"}, .twin_id = "twin-sentinel"}, "path '../up' has a '..' component"},
        {{.tool = "", .twin_id = "twin-aegis"}, "no command given"},
    };
    Fixture f;
    for (const auto& row : rows) {
      CAPTURE(row.says);
      const auto outcome = f.executor.run(row.request);
      REQUIRE(outcome);
      CHECK_FALSE(outcome->ran);
      CHECK_FALSE(outcome->success());
      CHECK(outcome->exit_code == exit_usage);
      CHECK(outcome->decision.is_invalid_request());
      CHECK(outcome->message.find(row.says) != std::string::npos);
      CHECK(outcome->err.lines == std::vector<std::string>{outcome->message});
      CHECK(f.executor.check(row.request) == outcome->decision);
      const auto record = f.executor.history().query({.page_size = 1})->records.at(0);
      CHECK(record.rule == invalid_request_rule);
      CHECK(record.exit_code == exit_usage);
    }
    CHECK(f.spawner->plans().empty());
    // The policy speaks first: a twin not granted the tool is refused, whatever its arguments.
    const auto refused = f.executor.run({.tool = "file_write", .args = {"x"}, .twin_id = "twin-trace"});
    REQUIRE(refused);
    CHECK(refused->exit_code == 1);
    CHECK(refused->decision.rule == "default_deny");
  }

  TEST_CASE("a folder given as the command is allowed to be tried, and cannot start: 126") {
    const auto command = Command::make({.tool = "/", .twin_id = "twin-aegis"}, ToolCatalog::seed_default());
    REQUIRE(command);
    CHECK(Policy::seed_default().decide(*command).allowed);
  }

  TEST_CASE("bwrap mode wraps the command: workspace read-only at /workspace, /tmp and /work capped tmpfs, seccomp") {
    Fixture f({}, Isolation::bwrap);
    const auto outcome = f.executor.run({.tool = "id", .twin_id = "twin-aegis"});
    REQUIRE(outcome);
    CHECK(outcome->isolation == Isolation::bwrap);
    const auto plan = f.spawner->plans().at(0);
    CHECK(plan.argv[0] == "/usr/bin/bwrap");
    for (const char* flag : {"--unshare-all", "--unshare-net", "--die-with-parent", "--new-session", "--proc", "--dev",
                             "--ro-bind", "--size", "--tmpfs"}) {
      CAPTURE(flag);
      CHECK(has(plan.argv, flag));
    }
    // After "--": the program, behind a shell that answers 126/127 when it cannot start.
    const auto dashdash = std::find(plan.argv.begin(), plan.argv.end(), "--");
    REQUIRE(plan.argv.end() - dashdash == 5);
    CHECK(std::vector<std::string>(dashdash + 1, dashdash + 4) == std::vector<std::string>{"/bin/sh", "-c", "exec \"$0\" \"$@\""});
    CHECK(program_name(*(dashdash + 4)) == "id");
    // The workspace is bound read-only; nothing binds it writable.
    const auto workspace = std::find(plan.argv.begin(), plan.argv.end(), "/workspace");
    REQUIRE(workspace != plan.argv.end());
    CHECK(*(workspace - 2) == "--ro-bind");
    CHECK_FALSE(has(plan.argv, "--bind"));
    // The filter comes as fd 3, which the spawner provides.
    const auto seccomp = std::find(plan.argv.begin(), plan.argv.end(), "--seccomp");
    REQUIRE(seccomp != plan.argv.end());
    CHECK(*(seccomp + 1) == std::to_string(seccomp_fd_in_command));
    CHECK(plan.seccomp_fd);
    CHECK(has(plan.env, "PAGI_WORKSPACE=/workspace"));
    CHECK(has(plan.env, "HOME=/work"));
    CHECK(has(plan.env, "PWD=/work"));
    CHECK(has(plan.env, "TMPDIR=/tmp"));
    CHECK(plan.no_new_privs);
  }

  TEST_CASE("execution ids are fresh UUID v4s") {
    Fixture f;
    std::set<std::string> ids;
    for (int i = 0; i < 50; ++i) {
      const auto outcome = f.executor.run({.tool = "nope", .twin_id = "nobody"});
      REQUIRE(outcome);
      const auto& id = outcome->execution_id;
      REQUIRE(id.size() == 36);
      CHECK(id[14] == '4');
      CHECK(std::string("89ab").find(id[19]) != std::string::npos);
      ids.insert(id);
    }
    CHECK(ids.size() == 50);
  }

  TEST_CASE("open refuses a sandbox root that is a file") {
    TempDir dir;
    std::ofstream(dir.path() / "file") << "x";
    auto sandbox = Sandbox::make({.root_dir = dir.path() / "file"});
    REQUIRE(sandbox);
    const auto executor = Executor::open({.sandbox = *sandbox});
    REQUIRE_FALSE(executor);
    CHECK(executor.error().code == Errc::sandbox_setup);
  }

  TEST_CASE("Sandbox::with_isolation validates the new kind's rules") {
    const auto as_root = Sandbox::make({.root_dir = "/tmp/sb", .sandbox_uid = 0, .sandbox_gid = 0, .run_as_root = true});
    REQUIRE(as_root);
    CHECK(as_root->with_isolation(Isolation::bwrap));
    const auto native = as_root->with_isolation(Isolation::native);
    REQUIRE_FALSE(native);
    CHECK(native.error().code == Errc::invalid_config);
  }

  TEST_CASE("the peak memory clients see is the tree's, else the largest process's") {
    CHECK(Usage{.max_rss_bytes = 3, .peak_memory_bytes = 8}.peak_bytes() == 8);
    CHECK(Usage{.max_rss_bytes = 3}.peak_bytes() == 3);
    CHECK(Usage{.cpu_user = std::chrono::microseconds(2), .cpu_system = std::chrono::microseconds(5)}.cpu_time() ==
          std::chrono::microseconds(7));
  }

  TEST_CASE("Sandbox::make names what is wrong") {
    CHECK(Sandbox::make({.root_dir = "relative"}).error().message().find("absolute") != std::string::npos);
    CHECK_FALSE(Sandbox::make({.limits = {.timeout = std::chrono::milliseconds(0)}}));
    CHECK_FALSE(Sandbox::make({.limits = {.timeout = std::chrono::milliseconds(-5)}}));
    CHECK_FALSE(Sandbox::make({.limits = {.output = {.max_bytes = 0}}}));
  }
}

TEST_SUITE("executor") {
  TEST_CASE("the policy's per-twin limits and network reach the launch plan; the deadline still caps time") {
    TempDir dir;
    auto spawner = std::make_shared<FakeSpawner>();
    auto spec = PolicySpec::seed_default();
    spec.twins["twin-aegis"].limits = {.timeout = std::chrono::milliseconds(1500), .memory_bytes = 64ULL << 20,
                                       .max_processes = 8, .output_bytes = 100, .output_lines = 3};
    spec.twins["twin-aegis"].network = NetworkAccess::host;
    spec.twins["twin-fetch"] = {.allow = {"true"}, .network = NetworkAccess::egress,
                                .allow_domains = {*parse_domain_pattern("*.example.org")}};
    auto policy = Policy::make(spec);
    REQUIRE(policy);
    auto sandbox = Sandbox::make({.root_dir = dir.path() / "sb"});
    REQUIRE(sandbox);
    auto executor = Executor::open({.policy = *policy, .sandbox = *sandbox, .spawner = spawner});
    REQUIRE(executor);
    REQUIRE(executor->run({.tool = "true", .twin_id = "twin-aegis"}));
    REQUIRE(executor->run({.tool = "true", .twin_id = "twin-aegis", .timeout_cap = std::chrono::milliseconds(200)}));
    REQUIRE(executor->run({.tool = "file_write", .args = {"f", "x"}, .twin_id = "twin-sentinel"}));
    const auto fetched = executor->run({.tool = "true", .twin_id = "twin-fetch"});
    REQUIRE(fetched);
    const auto plans = spawner->plans();
    REQUIRE(plans.size() == 3);
    CHECK(plans[0].limits.timeout == std::chrono::milliseconds(1500));
    CHECK(plans[0].limits.memory_bytes == (64ULL << 20));
    CHECK(plans[0].limits.max_processes == 8);
    CHECK(plans[0].limits.output == OutputCaps{.max_bytes = 100, .max_lines = 3});
    CHECK(plans[0].network == NetworkAccess::host);
    CHECK(plans[0].twin_id == "twin-aegis");
    CHECK(plans[1].limits.timeout == std::chrono::milliseconds(200));
    // An egress run's plan carries what the proxy needs: the domains, who and which execution.
    CHECK(plans[2].network == NetworkAccess::egress);
    CHECK(plans[2].allow_domains == std::vector<DomainPattern>{{.name = "example.org", .wildcard = true}});
    CHECK(plans[2].twin_id == "twin-fetch");
    CHECK(plans[2].execution_id == fetched->execution_id);
    // Not native: no proxy runs for it, so no proxy variables point at one.
    CHECK(std::none_of(plans[2].env.begin(), plans[2].env.end(),
                       [](const std::string& v) { return v.find("PROXY") != std::string::npos; }));

    const auto safe = Executor::open({.policy = policy->with_safe_mode(true), .sandbox = *sandbox, .spawner = spawner});
    REQUIRE(safe);
    const auto decision = safe->check({.tool = "file_write", .args = {"f", "x"}, .twin_id = "twin-sentinel"});
    CHECK(decision.allowed);
    CHECK(decision.network == NetworkAccess::none);
  }

  TEST_CASE("a twin's limits in the policy file only lower the server's maxima, never raise them") {
    TempDir dir;
    auto spawner = std::make_shared<FakeSpawner>();
    auto spec = PolicySpec::seed_default();
    spec.twins["twin-aegis"].limits = {.timeout = std::chrono::hours(24), .memory_bytes = 1ULL << 40,
                                       .max_processes = 1'000'000, .output_bytes = 1ULL << 30,
                                       .output_lines = 1'000'000'000};
    spec.twins["twin-sentinel"].limits = {.memory_bytes = 64ULL << 20, .max_processes = 16};
    auto policy = Policy::make(spec);
    REQUIRE(policy);
    const Limits server{.timeout = std::chrono::seconds(10), .output = {.max_bytes = 32768, .max_lines = 200},
                        .memory_bytes = 256ULL << 20, .max_processes = 64};
    auto sandbox = Sandbox::make({.root_dir = dir.path() / "sb", .limits = server});
    REQUIRE(sandbox);
    auto executor = Executor::open({.policy = *policy, .sandbox = *sandbox, .spawner = spawner});
    REQUIRE(executor);
    const auto greedy = executor->limits_for(executor->check({.tool = "true", .twin_id = "twin-aegis"}));
    CHECK(greedy.timeout == std::chrono::seconds(10));
    CHECK(greedy.memory_bytes == (256ULL << 20));
    CHECK(greedy.max_processes == 64);
    CHECK(greedy.output == OutputCaps{.max_bytes = 32768, .max_lines = 200});
    REQUIRE(executor->run({.tool = "true", .twin_id = "twin-aegis"}));
    CHECK(spawner->plans().at(0).limits.timeout == std::chrono::seconds(10));
    CHECK(spawner->plans().at(0).limits.memory_bytes == (256ULL << 20));
    // Lower values still apply; and where the server sets no limit (0), the twin's does.
    const auto modest = executor->limits_for(executor->check({.tool = "command_exec", .args = {"ls"}, .twin_id = "twin-sentinel"}));
    CHECK(modest.memory_bytes == (64ULL << 20));
    CHECK(modest.max_processes == 16);
    auto unlimited = Sandbox::make({.root_dir = dir.path() / "sb", .limits = {.memory_bytes = 0, .max_processes = 0}});
    REQUIRE(unlimited);
    auto open_server = Executor::open({.policy = *policy, .sandbox = *unlimited, .spawner = spawner});
    REQUIRE(open_server);
    const auto bounded = open_server->limits_for(open_server->check({.tool = "true", .twin_id = "twin-aegis"}));
    CHECK(bounded.memory_bytes == (1ULL << 40));
    CHECK(bounded.max_processes == 1'000'000);
  }
}

