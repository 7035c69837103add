// SPDX-License-Identifier: Apache-2.0
// Spawner: the one seam between the Executor and the kernel. Real in lib/, fake in unit tests.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "pagi_exec/decision.hpp"
#include "pagi_exec/error.hpp"
#include "pagi_exec/outcome.hpp"
#include "pagi_exec/sandbox.hpp"

namespace pagi_exec {

/// A uid and gid a command runs as.
struct Credentials {
  std::uint32_t uid = 65534;
  std::uint32_t gid = 65534;
  bool operator==(const Credentials&) const = default;
};

/// The descriptor number at which a bwrap command receives the seccomp filter (`--seccomp 3`).
inline constexpr int seccomp_fd_in_command = 3;

/// A fully resolved process launch: nothing is decided after this point.
struct LaunchPlan {
  std::vector<std::string> argv;  ///< argv[0] is an absolute path or a path relative to cwd
  std::vector<std::string> env;   ///< "NAME=value", the whole environment
  std::filesystem::path cwd;      ///< where argv[0] starts (bwrap: where bwrap starts; --chdir moves the command)
  std::filesystem::path workspace;  ///< host path of the twin's workspace
  Isolation isolation = Isolation::cwd;
  Limits limits;                  ///< limits.timeout already capped by the caller's deadline
  /// What the run may reach (the policy's decision). native: none and egress get a namespace of
  /// their own, egress with the proxy listening in it; host stays in the server's. bwrap: only
  /// host shares the server's network (egress needs native; under bwrap it has none). cwd: the
  /// server's network whatever this says.
  NetworkAccess network = NetworkAccess::none;
  std::vector<DomainPattern> allow_domains{};  ///< egress: what the proxy lets through
  std::vector<DomainPattern> deny_domains{};   ///< egress: refused although allowed (deny wins)
  std::string twin_id{};       ///< whom the run acts for (the proxy's audit records)
  std::string execution_id{};  ///< which execution (the proxy's audit records)
  /// cwd, bwrap: the uid/gid argv[0] is exec'd as (with no supplementary groups and
  /// no_new_privs); nullopt keeps the server's own (not root, or run_as_root).
  std::optional<Credentials> run_as;
  /// cwd, bwrap: argv[0] starts with no_new_privs (setuid binaries do not raise privileges).
  bool no_new_privs = false;
  /// bwrap: the native seccomp filter is handed to argv[0] at seccomp_fd_in_command.
  bool seccomp_fd = false;
  bool operator==(const LaunchPlan&) const = default;
};

/// What happened to a launched process tree.
struct ProcessResult {
  int exec_errno = 0;  ///< non-zero when execve failed (the command never ran)
  int exit_code = 0;   ///< exit status, or 128+N when killed by signal N
  int signal = 0;
  bool timed_out = false;
  bool cancelled = false;
  bool oom_killed = false;      ///< native: the memory limit killed a process
  bool pids_limit_hit = false;  ///< native: a fork failed at the process limit
  CapturedStream out;
  CapturedStream err;
  Usage usage;
  std::chrono::microseconds elapsed{0};
  /// When the command was running (its exec done), on steady_clock; unset when the spawner does
  /// not tell (or the command never ran).
  std::optional<std::chrono::steady_clock::time_point> running_since{};
  /// An egress run (LaunchPlan's network is egress): its connections through the proxy.
  std::optional<EgressSummary> egress{};
};

/// Which output stream a chunk came from.
enum class OutputStream : std::uint8_t { out, err };

/// Receives output as the command produces it, in order per stream. Called on the thread that
/// runs the execution; while it blocks, the command's output is not read, so a slow receiver
/// slows the command down (the pipe fills) instead of growing memory. Returning false stops the
/// execution: its whole tree is killed, as with a stop request. May be empty.
using OutputSink = std::function<bool(OutputStream, std::string_view chunk)>;

/// Starts a LaunchPlan and waits for it. Implementations must be thread-safe, must end every
/// process of the tree when the command exits, the time limit passes or `stop` is requested,
/// and must bound the memory used for output by the caps.
class Spawner {
 public:
  virtual ~Spawner() = default;
  /// Errc::spawn_failed or Errc::io when the tree could not be started or watched.
  /// `sink`, when set, also receives the output as it comes (the result still holds the capped
  /// capture).
  [[nodiscard]] virtual Result<ProcessResult> spawn(const LaunchPlan& plan, std::stop_token stop,
                                                    const OutputSink& sink) const = 0;
  /// Blocks until the clean-up spawn() leaves for after its result (reaping the supervisor or
  /// init, returning cgroups and uids to their pools) has finished, for every spawn() that
  /// returned before the call. The real spawners do it on a thread of their own, joined when the
  /// spawner is destroyed; a spawner that leaves nothing behind need not override this.
  virtual void wait_for_cleanup() const {}
};

/// The real spawner for cwd and bwrap: a supervisor process per execution (subreaper, own
/// session) that runs the command, enforces the time limit and kills every descendant.
/// See lib/sys/supervisor.cpp. Each call makes a new spawner, with its own cgroup pool and
/// clean-up thread: make one per host and share it.
[[nodiscard]] std::shared_ptr<const Spawner> make_process_spawner();

/// The native spawner: a sandbox init in new namespaces that supervises the command as PID 1 of
/// its PID namespace (lib/sys/native.cpp). Make it once per host: a root server's creates the
/// template mount namespace, a pool of fresh loopback-only network namespaces, the cgroup and
/// uid pools; every one compiles the seccomp filter. Errc::sandbox_setup when this machine cannot
/// provide them (not root and no user namespaces, no seccomp, ...), with what is missing. Also
/// runs plans of the other kinds, with a process spawner of its own.
///
/// A root server's spawner also runs the egress proxy (SandboxSpec::egress; Errc::invalid_config
/// for a bad setting): each run of a twin with network = "egress" gets a namespace of its own with
/// the proxy listening on 127.0.0.1:egress_proxy_port inside it, and every connection attempt is
/// handed to `egress_recorder` (for the audit log) before that run's spawn() returns; it is called
/// on the proxy's thread and must not block for long. A server that is not root cannot run the
/// proxy: its egress runs fail with Errc::sandbox_setup saying so.
using EgressRecorder = std::function<void(const EgressConnection&)>;
[[nodiscard]] Result<std::shared_ptr<const Spawner>> make_native_spawner(const Sandbox& sandbox,
                                                                         EgressRecorder egress_recorder = {});

/// Starts the spawn helper: a small single-threaded child process that clones each execution's
/// supervisor or native init from then on, so the real spawners never fork this (possibly big,
/// multithreaded) process, whose copy-on-write fork dominates the cost of a run under load.
/// Optional: without it, the spawners clone this process itself, as before.
///
/// Call it first thing in main(): before any thread exists (Errc::spawn_failed otherwise,
/// saying so) and before reading secrets, since the helper is a copy of the process as it is
/// now. The helper dies with this process and uses this process's credentials as they are now;
/// a fork of this process, or this process after a change of credentials, does not use it. When
/// the helper is gone (killed), executions in flight end with their result or Errc::spawn_failed,
/// and later ones are cloned directly again. Once per process.
///
/// `program`: the pagi-spawner program (built in apps/pagi-spawner), which the helper becomes
/// by execve. Being small and static it has a handful of memory mappings instead of this
/// process's hundreds, which each clone of a run's root copies and each exit tears down. Empty,
/// or a path that does not exist: the helper is this process's fork itself. A program that
/// others may change (group/other-writable, owned by neither root nor us, or in a folder, or
/// below one, that others may write to and that is not sticky) is Errc::spawn_failed.
[[nodiscard]] Result<void> start_spawn_helper(const std::filesystem::path& program = {});

/// The pagi-spawner program a host passes to start_spawn_helper: PAGI_EXEC_SPAWNER when it is set
/// (empty: none, the helper stays in-process), else `built_in` (where the host's build put it).
[[nodiscard]] std::filesystem::path spawner_program(const char* built_in);

/// Where a host's build put the pagi-spawner program, and where `meson install` puts it.
struct SpawnerLocation {
  std::filesystem::path build_root;  ///< the build tree the host was built in (absolute)
  std::filesystem::path built;       ///< the program in that build tree (absolute)
  /// The installed program relative to the folder of the installed host
  /// ("../libexec/pagi-exec/pagi-spawner" from <prefix>/bin).
  std::filesystem::path from_bindir;
};

/// The pagi-spawner program of a host that may be installed: PAGI_EXEC_SPAWNER when it is set
/// (empty: none, the helper stays in-process); else, when the running program (/proc/self/exe,
/// links resolved) lies in `where.build_root`, `where.built`; else the installed copy, found
/// relative to the running program's real folder, never to the working folder or PATH.
/// Errc::spawn_failed when the installed copy is missing, naming where it was looked for.
/// Thread-safe.
[[nodiscard]] Result<std::filesystem::path> spawner_program(const SpawnerLocation& where);

}  // namespace pagi_exec
