// SPDX-License-Identifier: Apache-2.0
// The disk side of a workspace: file_write writes regular files only, and the workspace quota.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <functional>

#include "sys/disk_usage.hpp"
#include "test_support.hpp"

using namespace pagi_exec;
using test_support::TempDir;

namespace {

constexpr std::uint64_t mib = 1024 * 1024;

Request write_req(std::string path, std::string content, std::string twin = "twin-sentinel") {
  return Request{.tool = "file_write", .args = {std::move(path), std::move(content)}, .twin_id = std::move(twin)};
}

Request sentinel_shell(std::string line) {
  return Request{.tool = "command_exec", .args = {std::move(line)}, .twin_id = "twin-sentinel"};
}

Executor executor_with_quota(const std::filesystem::path& root, std::uint64_t quota_bytes,
                             Isolation isolation = Isolation::cwd) {
  auto sandbox = Sandbox::make({.root_dir = root, .isolation = isolation, .limits = {.workspace_bytes = quota_bytes}});
  REQUIRE(sandbox);
  auto executor = Executor::open({.policy = Policy::seed_default(), .sandbox = *sandbox});
  REQUIRE(executor);
  return *executor;
}

// A unix socket bound at `path`; the socket stays bound (the file stays a socket) after close.
bool plant_socket(const std::filesystem::path& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (fd < 0 || path.string().size() >= sizeof addr.sun_path) return false;
  std::strcpy(addr.sun_path, path.c_str());
  const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return bound;
}

// What sits at a workspace path, planted on the host side.
struct Planted {
  const char* name;
  const char* kind;  // how the refusal names it
  std::function<bool(const std::filesystem::path&)> plant;  // false: cannot be planted here
};

const Planted planted[] = {
    {"fifo", "a FIFO (named pipe)", [](const std::filesystem::path& p) { return ::mkfifo(p.c_str(), 0666) == 0; }},
    {"socket", "a socket", plant_socket},
    {"chardev", "a character device",
     [](const std::filesystem::path& p) { return ::mknod(p.c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0; }},
    {"blockdev", "a block device",
     [](const std::filesystem::path& p) { return ::mknod(p.c_str(), S_IFBLK | 0600, makedev(7, 0)) == 0; }},
    {"folder", "a directory", [](const std::filesystem::path& p) { return ::mkdir(p.c_str(), 0755) == 0; }},
    {"link", "a symlink", [](const std::filesystem::path& p) { return ::symlink("/dev/null", p.c_str()) == 0; }},
};

}  // namespace

TEST_SUITE("disk") {
  TEST_CASE("file_write refuses what is not a regular file, at once, naming the path and what it is") {
    TempDir dir;
    const auto executor = executor_with_quota(dir.path(), 0);
    REQUIRE(executor.run(write_req("seed", "x")));  // makes the workspace
    for (const auto& p : planted) {
      CAPTURE(p.name);
      const auto path = dir.path() / "twin-sentinel" / p.name;
      if (!p.plant(path)) {
        test_support::skip_part(std::string(p.name) + ": cannot be planted here: " + std::strerror(errno));
        continue;
      }
      struct stat before{};
      REQUIRE(::lstat(path.c_str(), &before) == 0);
      // A writer's open(2) of a FIFO without a reader would block for ever: this call returns.
      const auto outcome = executor.run(write_req(p.name, "x"));
      REQUIRE(outcome);
      CHECK(outcome->exit_code == exit_usage);
      CHECK(outcome->message.find(std::string("'") + p.name + "'") != std::string::npos);
      CHECK(outcome->message.find(p.kind) != std::string::npos);
      struct stat after{};
      REQUIRE(::lstat(path.c_str(), &after) == 0);
      CHECK((after.st_mode & S_IFMT) == (before.st_mode & S_IFMT));  // left as it was
      CHECK(after.st_ino == before.st_ino);
    }
  }

  TEST_CASE("a FIFO planted by the twin's own command in cwd mode is refused, not waited on") {
    TempDir dir;
    const auto executor = executor_with_quota(dir.path(), 0);
    const auto planted_fifo = executor.run(sentinel_shell("mkfifo \"$PAGI_WORKSPACE/f\" && echo planted"));
    REQUIRE(planted_fifo);
    REQUIRE(planted_fifo->out.lines == std::vector<std::string>{"planted"});
    // A reader that never reads: if file_write opened the FIFO, the write would land in it.
    const int reader = ::open((dir.path() / "twin-sentinel" / "f").c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    REQUIRE(reader >= 0);
    const auto outcome = executor.run(write_req("f", "into the pipe"));
    REQUIRE(outcome);  // a usage error, answered in-band
    CHECK(outcome->exit_code == exit_usage);
    CHECK(outcome->message.find("FIFO") != std::string::npos);
    char buf[64];
    CHECK(::read(reader, buf, sizeof buf) <= 0);  // nothing was written into it
    ::close(reader);
  }

  TEST_CASE("file_write replaces a file and never writes through another name of it (a hard link)") {
    TempDir dir;
    const auto executor = executor_with_quota(dir.path() / "sb", 0);
    REQUIRE(executor.run(write_req("seed", "x")));
    const auto outside = dir.path() / "outside.txt";
    std::ofstream(outside) << "host file\n";
    REQUIRE(::link(outside.c_str(), (dir.path() / "sb" / "twin-sentinel" / "linked").c_str()) == 0);
    const auto outcome = executor.run(write_req("linked", "pwned"));
    REQUIRE(outcome);
    CHECK(outcome->success());
    CHECK(test_support::read_file(outside) == "host file\n");
    CHECK(test_support::read_file(dir.path() / "sb" / "twin-sentinel" / "linked") == "pwned");
    // No temporary file is left beside it.
    std::size_t entries = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path() / "sb" / "twin-sentinel")) ++entries;
    CHECK(entries == 2);
  }

  TEST_CASE("measure_tree counts allocated blocks without following symlinks, hard links once") {
    TempDir dir;
    const auto root = dir.path() / "ws";
    std::filesystem::create_directories(root / "a" / "b");
    std::ofstream(root / "a" / "b" / "f") << std::string(100'000, 'x');
    REQUIRE(::link((root / "a" / "b" / "f").c_str(), (root / "same").c_str()) == 0);
    // A symlink to a big tree outside: counted as the link, not what it points to.
    std::filesystem::create_directories(dir.path() / "big");
    std::ofstream(dir.path() / "big" / "g") << std::string(1'000'000, 'y');
    std::filesystem::create_directory_symlink(dir.path() / "big", root / "escape");
    const auto usage = sys::measure_tree(root);
    REQUIRE(usage);
    CHECK(usage->entries == 6);  // ws, a, b, f, same, escape
    CHECK(usage->bytes >= 100'000);
    CHECK(usage->bytes < 1'000'000);
    // Leaving out a top-level folder: its entries go; the file stays counted through its other name.
    const auto skipped = sys::measure_tree(root, {"a"});
    REQUIRE(skipped);
    CHECK(skipped->entries == 3);  // ws, same, escape
    CHECK(skipped->bytes >= 100'000);
    CHECK(skipped->bytes < usage->bytes);
    CHECK(sys::measure_tree(dir.path() / "missing")->bytes == 0);
  }

  TEST_CASE("file_write refuses writes past the quota; replacing a file counts what it frees") {
    TempDir dir;
    const auto executor = executor_with_quota(dir.path(), 1 * mib);
    const std::string chunk(300 * 1024, 'x');
    for (int i = 0; i < 3; ++i) {
      const auto outcome = executor.run(write_req("f" + std::to_string(i), chunk));
      REQUIRE(outcome);
      CHECK(outcome->success());
      REQUIRE(outcome->workspace);
      CHECK(outcome->workspace->quota_bytes == 1 * mib);
    }
    const auto refused = executor.run(write_req("f3", chunk));
    REQUIRE(refused);
    CHECK_FALSE(refused->success());
    CHECK(refused->limit_hit == LimitHit::workspace_quota);
    CHECK(refused->message.find("quota") != std::string::npos);
    CHECK(refused->message.find("1.0 MiB") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(dir.path() / "twin-sentinel" / "f3"));
    // Refused before anything is made: not even the folders on its way (each would cost a block).
    CHECK(executor.run(write_req("new/folders/f3", chunk))->limit_hit == LimitHit::workspace_quota);
    CHECK_FALSE(std::filesystem::exists(dir.path() / "twin-sentinel" / "new"));
    // The same size again over an existing file fits: the old one is freed.
    const auto replaced = executor.run(write_req("f1", chunk));
    REQUIRE(replaced);
    CHECK(replaced->success());
    CHECK(test_support::du(dir.path() / "twin-sentinel") <= 1 * mib);
    // The cached figure matches a fresh walk.
    CHECK(replaced->workspace->bytes == sys::measure_tree(dir.path() / "twin-sentinel")->bytes);
    // Another twin has its own quota.
    const auto other = executor.run(write_req("f", chunk, "twin-aegis"));
    REQUIRE(other);
    CHECK(other->success());
  }

  TEST_CASE("a cwd run that leaves the workspace over quota is reported; the twin is refused until back under") {
    TempDir dir;
    const auto executor = executor_with_quota(dir.path(), 1 * mib);
    const auto filled = executor.run(sentinel_shell("head -c 2097152 /dev/zero > \"$PAGI_WORKSPACE/big\"; echo done"));
    REQUIRE(filled);
    CHECK(filled->exit_code == 0);
    CHECK(filled->limit_hit == LimitHit::workspace_quota);
    REQUIRE(filled->workspace);
    CHECK(filled->workspace->over_quota());
    CHECK(filled->message.find("workspace over quota: 2.0 MiB of 1.0 MiB") != std::string::npos);

    const auto write = executor.run(write_req("small", "x"));
    REQUIRE(write);
    CHECK_FALSE(write->success());
    CHECK(write->limit_hit == LimitHit::workspace_quota);
    const auto run = executor.run(sentinel_shell("echo should not run"));
    REQUIRE(run);
    CHECK_FALSE(run->ran);
    CHECK(run->out.lines.empty());
    CHECK(run->message.find("workspace over quota") != std::string::npos);
    CHECK(executor.workspaces().front().usage.over_quota());

    // A write that shrinks the workspace is accepted, and then the twin is served again.
    const auto shrink = executor.run(write_req("big", ""));
    REQUIRE(shrink);
    CHECK(shrink->success());
    CHECK_FALSE(shrink->workspace->over_quota());
    const auto again = executor.run(sentinel_shell("echo served"));
    REQUIRE(again);
    CHECK(again->out.lines == std::vector<std::string>{"served"});
  }

  TEST_CASE("a run's own working folder does not count; what it leaves in the workspace does") {
    TempDir dir;
    const auto executor = executor_with_quota(dir.path(), 1 * mib);
    const auto scratch = executor.run(sentinel_shell("head -c 2097152 /dev/zero > scratch; echo ok"));
    REQUIRE(scratch);
    CHECK(scratch->limit_hit == LimitHit::none);
    REQUIRE(scratch->workspace);
    CHECK_FALSE(scratch->workspace->over_quota());
    CHECK(executor.run(write_req("after", "x"))->success());
  }

  TEST_CASE("a workspace nested too deep to measure is refused, not left unmetered") {
    TempDir dir;
    const auto executor = executor_with_quota(dir.path(), 1 * mib);
    // Data hidden below the deepest level the walk descends to would escape the quota.
    const auto deep = executor.run(sentinel_shell(
        "d=\"$PAGI_WORKSPACE\"; i=0; while [ $i -lt 300 ]; do d=\"$d/a\"; i=$((i+1)); done; mkdir -p \"$d\" && "
        "head -c 2097152 /dev/zero > \"$d/hidden\" && echo hidden"));
    REQUIRE(deep);
    CHECK(deep->out.lines == std::vector<std::string>{"hidden"});
    CHECK(deep->message.find("deeper than 256") != std::string::npos);
    const auto write = executor.run(write_req("x", "x"));
    REQUIRE(write);
    CHECK_FALSE(write->success());
    CHECK(write->limit_hit == LimitHit::workspace_quota);
    CHECK(write->message.find("cannot measure") != std::string::npos);
    const auto run = executor.run(sentinel_shell("echo should not run"));
    REQUIRE(run);
    CHECK_FALSE(run->ran);
  }

  TEST_CASE("a policy's workspace_mb lowers the server's quota, never raises it") {
    TempDir dir;
    const auto executor = executor_with_quota(dir.path(), 2 * mib);
    auto spec = PolicySpec::seed_default();
    spec.twins["twin-sentinel"].limits.workspace_bytes = 1 * mib;
    spec.twins["twin-aegis"].limits.workspace_bytes = 64 * mib;
    const auto lowered = executor.with_policy(*Policy::make(spec));
    CHECK(lowered.limits_for(lowered.check(write_req("f", ""))).workspace_bytes == 1 * mib);
    CHECK(lowered.limits_for(lowered.check(write_req("f", "", "twin-aegis"))).workspace_bytes == 2 * mib);
    const std::string chunk(600 * 1024, 'x');
    REQUIRE(lowered.run(write_req("a", chunk))->success());
    CHECK(lowered.run(write_req("b", chunk))->limit_hit == LimitHit::workspace_quota);
  }
}
