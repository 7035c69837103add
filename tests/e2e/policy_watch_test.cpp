// SPDX-License-Identifier: Apache-2.0
// E2E: the policy is reloaded when its file changes, without SIGHUP: a ConfigMap volume updated
// the way kubelet does it (a new folder, the `..data` symlink renamed over), and a plain file
// edited in place; a broken new version keeps the old policy and is reported once.
#include <doctest/doctest.h>

#include <fstream>
#include <string>

#include "server_fixture.hpp"

using e2e::Server;
using namespace std::chrono_literals;

namespace {

constexpr const char* refuses_echo = R"(
[twins.twin-trace]
allow = ["vector_query"]
)";

constexpr const char* grants_echo = R"(
[twins.twin-trace]
allow = ["vector_query", "echo"]
)";

constexpr const char* broken = "[twins.twin-trace]\nallow = \"echo\"\n";  // a string, not an array

// Reloads take two ticks of a second (one to see the change, one to load it if it stayed).
constexpr auto reload_limit = 30s;

bool echo_allowed(Server& server) {
  grpc::ClientContext context;
  tools::ExecutionRequest request;
  request.set_twin_id("twin-trace");
  request.set_command("echo");
  tools::PolicyDecision decision;
  REQUIRE(server.stub().CheckPolicy(&context, request, &decision).ok());
  return decision.allowed();
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

// A ConfigMap volume as kubelet lays it out: policy.toml -> ..data/policy.toml, ..data -> a
// timestamped folder holding the files.
class ConfigMapVolume {
 public:
  explicit ConfigMapVolume(std::filesystem::path dir) : dir_(std::move(dir)) {}

  // kubelet's update: the new files in a new folder, a new symlink to it renamed over ..data
  // (one rename(2): a reader sees the old version or the new one, never a mix).
  void publish(const char* policy) {
    const auto folder = "..2026_" + std::to_string(++version_);
    std::filesystem::create_directories(dir_ / folder);
    std::ofstream(dir_ / folder / "policy.toml") << policy;
    std::filesystem::create_directory_symlink(folder, dir_ / "..data_tmp");
    std::filesystem::rename(dir_ / "..data_tmp", dir_ / "..data");
    if (version_ == 1) std::filesystem::create_symlink("..data/policy.toml", dir_ / "policy.toml");
  }

  [[nodiscard]] std::filesystem::path file() const { return dir_ / "policy.toml"; }

 private:
  std::filesystem::path dir_;
  int version_ = 0;
};

// How often the server's main thread has slept; with the server idle it sleeps only in its
// one-second wait, so each increase is one turn of the loop that watches the file.
long main_thread_sleeps(pid_t pid) {
  const auto status = e2e::read_text("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/status");
  const std::string key = "voluntary_ctxt_switches:";
  const auto at = status.find(key);
  REQUIRE(at != std::string::npos);
  return std::stol(status.substr(at + key.size()));
}

}  // namespace

TEST_SUITE("policy file watch") {
  TEST_CASE("a ConfigMap update is loaded without SIGHUP; a broken one keeps the policy and is reported once") {
    e2e::TempDir dir;
    ConfigMapVolume volume(dir.path() / "policy");
    volume.publish(refuses_echo);
    Server server({.env = {{"TOOLS_POLICY_FILE", volume.file().string()}}});
    const auto refused = e2e::execute(server.stub(), "twin-trace", "echo", {"hi"});
    REQUIRE(refused.status.ok());
    CHECK_FALSE(refused.response.success());
    CHECK(refused.response.policy_rule() == "default_deny");

    volume.publish(grants_echo);
    REQUIRE(e2e::eventually([&] { return echo_allowed(server); }, reload_limit));
    const auto allowed = e2e::execute(server.stub(), "twin-trace", "echo", {"hi"});
    REQUIRE(allowed.status.ok());
    CHECK(allowed.response.success());
    const auto log = server.process().stderr_text();
    CHECK(log.find("policy file changed: policy reloaded from " + volume.file().string()) != std::string::npos);
    CHECK(log.find("reason=\"file changed\"") != std::string::npos);

    volume.publish(broken);
    const std::string failure = "policy file changed: policy NOT reloaded, the old one stays in effect";
    REQUIRE(e2e::eventually([&] { return count(server.process().stderr_text(), failure) > 0; }, reload_limit));
    CHECK(echo_allowed(server));
    CHECK(e2e::health(server).status() == "degraded");
    // Three more turns of the loop with the broken file in place: it is not loaded (nor reported) again.
    const auto sleeps = main_thread_sleeps(server.process().pid());
    REQUIRE(e2e::eventually([&] { return main_thread_sleeps(server.process().pid()) >= sleeps + 3; }, reload_limit));
    CHECK(count(server.process().stderr_text(), failure) == 1);
    CHECK(echo_allowed(server));

    volume.publish(refuses_echo);
    REQUIRE(e2e::eventually([&] { return !echo_allowed(server); }, reload_limit));
    CHECK(e2e::health(server).status() == "healthy");
  }

  TEST_CASE("a plain file edited in place is loaded again") {
    e2e::TempDir dir;
    const auto file = dir.path() / "policy.toml";
    std::ofstream(file) << refuses_echo;
    Server server({.env = {{"TOOLS_POLICY_FILE", file.string()}}});
    CHECK_FALSE(echo_allowed(server));
    std::ofstream(file) << grants_echo;  // same inode: another size and mtime
    REQUIRE(e2e::eventually([&] { return echo_allowed(server); }, reload_limit));
  }
}
