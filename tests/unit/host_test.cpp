// SPDX-License-Identifier: Apache-2.0
// Host composition in the library: sandbox fallback and required isolation, the host's policy
// with forced safe mode, the health rules, who may see which history record, policy reloads.
#include <doctest/doctest.h>

#include <pagi_exec/pagi_exec.hpp>

#include <unistd.h>

#include <fstream>
#include <string>

#include "test_support.hpp"

using namespace pagi_exec;

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// bwrap at a path that does not exist: its probe fails on every machine.
HostSettings broken_bwrap(const std::filesystem::path& root) {
  HostSettings settings;
  settings.sandbox.root_dir = root;
  settings.sandbox.bwrap_path = "/nonexistent/bwrap";
  settings.isolation = Isolation::bwrap;
  return settings;
}

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path) << text;
}

}  // namespace

TEST_SUITE("host") {
  TEST_CASE("the settings' defaults are the library's own") {
    const HostSettings settings;
    CHECK(settings.sandbox == SandboxSpec{});
    CHECK(settings.request_limits == RequestLimits{});
    CHECK(settings.max_concurrency == AdmissionSpec{}.max_running);
    CHECK(settings.history_size == History::default_capacity);
    CHECK(settings.audit.path.empty());
    CHECK_FALSE(settings.isolation);
    SUBCASE("isolation is required for native unless said otherwise, not for bwrap or auto") {
      CHECK_FALSE(settings.isolation_required());
      CHECK(HostSettings{.isolation = Isolation::native}.isolation_required());
      CHECK_FALSE(HostSettings{.isolation = Isolation::bwrap}.isolation_required());
      CHECK_FALSE(HostSettings{.isolation = Isolation::native, .require_isolation = false}.isolation_required());
      CHECK(HostSettings{.require_isolation = true}.isolation_required());
    }
  }

  TEST_CASE("an isolation that does not work falls back to cwd, loudly, unless it is required") {
    test_support::TempDir dir;
    auto settings = broken_bwrap(dir.path());
    const auto opened = open_sandbox(settings);
    REQUIRE(opened);
    CHECK(opened->sandbox.isolation() == Isolation::cwd);
    CHECK(opened->reason.empty());  // it was asked for, not probed for
    CHECK_FALSE(opened->fallback.empty());
    REQUIRE(opened->notices.size() == 1);
    CHECK(opened->notices[0].level == NoticeLevel::warn);
    CHECK(contains(opened->notices[0].text, "!!! isolation 'bwrap' does not work here ("));
    CHECK(contains(opened->notices[0].text, "FALLING BACK TO 'cwd'"));

    settings.require_isolation = true;
    const auto refused = open_sandbox(settings);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == Errc::sandbox_setup);
    CHECK(refused.error().context == opened->fallback);  // only why: the host names its setting
  }

  TEST_CASE("cwd needs no probe; invalid sandbox settings are invalid_config") {
    test_support::TempDir dir;
    HostSettings settings{.isolation = Isolation::cwd};
    settings.sandbox.root_dir = dir.path();
    const auto opened = open_sandbox(settings);
    REQUIRE(opened);
    CHECK(opened->sandbox.isolation() == Isolation::cwd);
    CHECK(opened->notices.empty());
    settings.sandbox.root_dir = "relative/dir";
    const auto invalid = open_sandbox(settings);
    REQUIRE_FALSE(invalid);
    CHECK(invalid.error().code == Errc::invalid_config);
  }

  TEST_CASE("auto probes and says why") {
    test_support::TempDir dir;
    HostSettings settings;
    settings.sandbox.root_dir = dir.path();
    settings.sandbox.bwrap_path = "/nonexistent/bwrap";
    const auto opened = open_sandbox(settings);
    REQUIRE(opened);
    CHECK(opened->reason.rfind("auto: ", 0) == 0);
    CHECK(opened->sandbox.isolation() != Isolation::bwrap);
    if (opened->sandbox.isolation() == Isolation::cwd) {
      settings.require_isolation = true;  // only cwd works here: required isolation refuses to start
      const auto refused = open_sandbox(settings);
      REQUIRE_FALSE(refused);
      CHECK(refused.error().code == Errc::sandbox_setup);
    }
  }

  TEST_CASE("the host's policy: the seed, or the file, with safe mode forced on") {
    test_support::TempDir dir;
    HostSettings settings;
    auto seed = load_host_policy(settings);
    REQUIRE(seed);
    CHECK(seed->policy == Policy::seed_default());
    CHECK_FALSE(seed->policy.safe_mode());
    settings.safe_mode = true;
    seed = load_host_policy(settings);
    REQUIRE(seed);
    CHECK(seed->policy.safe_mode());

    settings.policy_file = dir.path() / "policy.toml";
    write_file(settings.policy_file, "safe_mode = false\n[twins.twin-a]\nallow = [\"echo\"]\n");
    auto file = load_host_policy(settings);
    REQUIRE(file);
    CHECK(file->policy.safe_mode());  // forced, whatever the file says
    settings.safe_mode = false;
    file = load_host_policy(settings);
    REQUIRE(file);
    CHECK_FALSE(file->policy.safe_mode());

    write_file(settings.policy_file, "safe_mode = maybe\n");
    const auto broken = load_host_policy(settings);
    REQUIRE_FALSE(broken);
    CHECK(contains(broken.error().message(), "policy.toml"));
  }

  TEST_CASE("a twin sees its own history records only; without authentication every record") {
    ExecutionRecord record;
    record.twin_id = "twin-a";
    CHECK(may_see(record, std::nullopt));
    CHECK(may_see(record, std::string("twin-a")));
    CHECK_FALSE(may_see(record, std::string("twin-b")));
  }

  TEST_CASE("who commands run as is said once, loudly for the host's own root") {
    HostSettings settings;
    CHECK(command_identity_notices(settings, Isolation::native, 0) ==
          Notices{{NoticeLevel::info, "native commands run as a uid = gid of their own from TOOLS_UID_POOL (1879048193-1879049215)"}});
    CHECK(command_identity_notices(settings, Isolation::native, 1000) ==
          Notices{{NoticeLevel::info, "commands run as uid 65534:65534 of a user namespace"}});
    CHECK(command_identity_notices(settings, Isolation::bwrap, 0) ==
          Notices{{NoticeLevel::info, "bwrap commands run as 65534:65534 with no supplementary groups and no_new_privs"}});
    CHECK(command_identity_notices(settings, Isolation::cwd, 1000) ==
          Notices{{NoticeLevel::info, "the server is not root: cwd commands run as its own uid 1000 (with no_new_privs)"}});
    settings.sandbox.run_as_root = true;
    const auto loud = command_identity_notices(settings, Isolation::cwd, 0);
    REQUIRE(loud.size() == 1);
    CHECK(loud[0].level == NoticeLevel::warn);
    CHECK(contains(loud[0].text, "!!! TOOLS_RUN_AS_ROOT=true: cwd commands run as the server's own uid 0 (ROOT)"));
  }

  TEST_CASE("health: degraded when the isolation asked for is not in effect or a reload failed") {
    HealthReport report{.requested = Isolation::native, .effective = Isolation::native, .isolation_reason = "requested"};
    CHECK_FALSE(report.degraded());
    CHECK(std::string(health_status(report)) == "healthy");
    CHECK(health_message(report).rfind("Tool executor service is operational; isolation=native (requested)", 0) == 0);
    report.effective = Isolation::cwd;
    report.fallback_reason = "no user namespaces";
    CHECK(report.degraded());
    CHECK(std::string(health_status(report)) == "degraded");
    CHECK(health_message(report).rfind(
              "Tool executor service is operational but degraded (isolation native requested, cwd in effect); ", 0) == 0);
    CHECK(contains(describe(report), "WARNING: isolation 'native' was requested but is unavailable (no user namespaces)"));
    report.effective = Isolation::native;
    report.reload_error = "bad file";
    CHECK(contains(health_message(report), "but degraded (last policy reload failed, the previous policy stays in effect: bad file)"));
  }

  TEST_CASE("the twins on the host's network: granted network = \"host\", or everyone in cwd") {
    auto spec = PolicySpec::seed_default();
    spec.twins["twin-host"] = {.allow = {"*"}, .network = NetworkAccess::host};
    spec.twins["twin-egress"] = {.allow = {"*"}, .network = NetworkAccess::egress,
                                 .allow_domains = {*parse_domain_pattern("pypi.org")}};
    const auto policy = Policy::make(spec);
    REQUIRE(policy);
    const auto cwd = host_network_twins(*policy, Isolation::cwd);
    CHECK(cwd.size() == policy->spec().twins.size());
    CHECK(contains(host_network_warning(cwd, Isolation::cwd), "(isolation cwd shares it with every twin)"));
    for (const auto isolation : {Isolation::native, Isolation::bwrap}) {
      CHECK(host_network_twins(*policy, isolation) == std::vector<std::string>{"twin-host"});
    }
    CHECK(contains(host_network_warning({"twin-host"}, Isolation::native), "(policy network = \"host\")"));
    CHECK(host_network_twins(policy->with_safe_mode(true), Isolation::native).empty());
  }

  TEST_CASE("isolation notices: the isolation and why; a loud warning for cwd by choice only") {
    HealthReport report{.effective = Isolation::cwd, .isolation_reason = "requested by TOOLS_ISOLATION"};
    const auto chosen = isolation_notices(report);
    REQUIRE(chosen.size() == 2);
    CHECK(chosen[0].text == "isolation cwd: requested by TOOLS_ISOLATION");
    CHECK(contains(chosen[1].text, "!!! isolation 'cwd'"));
    report.fallback_reason = "bwrap missing";  // the fallback warned when it happened
    CHECK(isolation_notices(report).size() == 1);
  }

  TEST_CASE("a host starts from its settings, reports its health and reloads its policy") {
    test_support::TempDir dir;
    HostSettings settings{.isolation = Isolation::cwd, .require_isolation = {}, .safe_mode = false,
                          .policy_file = dir.path() / "policy.toml"};
    settings.sandbox.root_dir = dir.path() / "sandbox";
    write_file(settings.policy_file, "[twins.twin-a]\nallow = [\"echo\"]\n");
    Notices notices;
    auto host = Host::start(settings, notices);
    REQUIRE_MESSAGE(host, host.error().message());
    CHECK_FALSE(notices.empty());  // at least who commands run as
    auto health = (*host)->health();
    CHECK_FALSE(health.degraded());
    CHECK(health.isolation_reason == "requested by TOOLS_ISOLATION");
    CHECK(health.sandbox_dir == settings.sandbox.root_dir.string());
    CHECK((*host)->executor()->policy().spec().twins.count("twin-a") == 1);

    write_file(settings.policy_file, "[twins.twin-b]\nallow = [\"echo\"]\n");
    const auto reloaded = (*host)->reload_policy();
    REQUIRE_FALSE(reloaded.empty());
    CHECK(reloaded[0].text.rfind("SIGHUP: policy reloaded from ", 0) == 0);
    CHECK((*host)->executor()->policy().spec().twins.count("twin-b") == 1);

    write_file(settings.policy_file, "this is not toml = = \n");
    const auto failed = (*host)->reload_policy();
    REQUIRE(failed.size() == 1);
    CHECK(failed[0].level == NoticeLevel::error);
    CHECK(failed[0].text.rfind("SIGHUP: policy NOT reloaded, the old one stays in effect: TOOLS_POLICY_FILE / --policy: ", 0) == 0);
    CHECK((*host)->executor()->policy().spec().twins.count("twin-b") == 1);  // the old one stays
    CHECK((*host)->health().degraded());
    CHECK((*host)->reopen_audit().empty());  // no audit log
  }

  TEST_CASE("a host asked to favor cgroup moves says it did" *
            test_support::skip_if(::geteuid() != 0, "needs root, to mount the cgroup hierarchy")) {
    test_support::TempDir dir;
    HostSettings settings{.isolation = Isolation::cwd};
    settings.sandbox.root_dir = dir.path() / "sandbox";
    settings.favor_cgroup_moves = true;
    Notices notices;
    auto host = Host::start(settings, notices);
    REQUIRE_MESSAGE(host, host.error().message());
    REQUIRE_FALSE(notices.empty());
    CHECK(notices[0].text.rfind("TOOLS_CGROUP_FAVORDYNMODS: cgroup2 favordynmods is on (kernel-wide)", 0) == 0);
  }

  TEST_CASE("a host that cannot start names the setting") {
    test_support::TempDir dir;
    Notices notices;
    HostSettings settings{.policy_file = dir.path() / "missing.toml"};
    auto host = Host::start(settings, notices);
    REQUIRE_FALSE(host);
    CHECK(host.error().message().rfind("TOOLS_POLICY_FILE / --policy: ", 0) == 0);

    settings = broken_bwrap(dir.path());
    settings.require_isolation = true;
    host = Host::start(settings, notices);
    REQUIRE_FALSE(host);
    CHECK(host.error().message().rfind("TOOLS_ISOLATION / --isolation: 'bwrap' does not work here (", 0) == 0);
    CHECK(contains(host.error().message(), ") and TOOLS_REQUIRE_ISOLATION / --require-isolation is set"));
  }

  TEST_CASE("a snapshot stays valid while a newer value replaces it") {
    Snapshot<std::string> value(std::string("old"));
    const auto held = value.current();
    value.replace("new");
    CHECK(*held == "old");
    CHECK(*value.current() == "new");
  }
}
