// SPDX-License-Identifier: Apache-2.0
// Sandbox: where and how a command runs — workspace root, isolation kind, limits.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "pagi_exec/decision.hpp"
#include "pagi_exec/egress.hpp"
#include "pagi_exec/error.hpp"

namespace pagi_exec {

/// How a command is contained. See README "Isolation modes" for what each does and does not hold.
enum class Isolation : std::uint8_t {
  cwd,    ///< a fresh working folder only; the command sees the host as the server does
  bwrap,  ///< the bubblewrap CLI: namespaces, read-only system dirs, network as the policy grants
  native, ///< built in: namespaces, minimal read-only root, seccomp, cgroups, unprivileged uid
};

[[nodiscard]] constexpr const char* to_string(Isolation isolation) noexcept {
  switch (isolation) {
    case Isolation::cwd: return "cwd";
    case Isolation::bwrap: return "bwrap";
    case Isolation::native: return "native";
  }
  return "unknown";
}

/// What a run granted `granted` reaches under `isolation`: cwd shares the host's network whatever
/// the policy says; bwrap cannot host the egress proxy, so egress has no network there; native
/// gives each run what it was granted.
[[nodiscard]] constexpr NetworkAccess effective_network(NetworkAccess granted, Isolation isolation) noexcept {
  if (isolation == Isolation::cwd) return NetworkAccess::host;
  if (isolation == Isolation::bwrap && granted == NetworkAccess::egress) return NetworkAccess::none;
  return granted;
}

/// "cwd", "bwrap" or "native" to an Isolation; nullopt for anything else.
[[nodiscard]] constexpr std::optional<Isolation> isolation_from_string(std::string_view name) noexcept {
  if (name == "cwd") return Isolation::cwd;
  if (name == "bwrap") return Isolation::bwrap;
  if (name == "native") return Isolation::native;
  return std::nullopt;
}

/// How much of each output stream is kept. Output past a cap is read and dropped, and reported.
struct OutputCaps {
  std::uint64_t max_bytes = 32 * 1024;  ///< per stream, counting the kept lines' bytes
  std::uint64_t max_lines = 200;        ///< per stream
  bool operator==(const OutputCaps&) const = default;
};

/// Hard limits of one execution. 0 means "no limit" for the numeric ones.
struct Limits {
  std::chrono::milliseconds timeout{10'000};  ///< wall clock, from start to the whole tree killed
  OutputCaps output;
  std::uint64_t memory_bytes = 512ULL << 20;     ///< cgroup memory+swap of the whole tree (native; cwd, bwrap with cgroups)
  std::uint64_t max_processes = 128;             ///< cgroup pids of the whole tree (native; cwd, bwrap with cgroups)
  std::chrono::seconds cpu_time{30};             ///< every mode: RLIMIT_CPU of each process
  std::uint64_t file_size_bytes = 256ULL << 20;  ///< every mode: RLIMIT_FSIZE (largest file written)
  std::uint64_t open_files = 1024;               ///< every mode: RLIMIT_NOFILE
  std::uint64_t tmpfs_bytes = 64ULL << 20;       ///< native, bwrap: size of /tmp and of /work, each
  std::uint64_t workspace_bytes = 256ULL << 20;  ///< every mode: quota of the twin's workspace (du)
  bool operator==(const Limits&) const = default;
};

/// Longest time limit accepted: one day.
inline constexpr std::chrono::milliseconds max_timeout{24LL * 60 * 60 * 1000};
/// Largest per-stream output cap accepted: 64 MiB (a response must still fit a gRPC message).
inline constexpr std::uint64_t max_output_bytes = 64ULL * 1024 * 1024;

/// Host uids/gids the native sandbox lends to its runs when the server runs as root: `first` is
/// the group that may read twins' folders (no other process holds it), and each run gets its
/// own uid = gid from first + 1 ... first + count - 1, never two runs at once, so per-uid kernel
/// limits (inotify instances, RLIMIT_NPROC, ...) are not shared between runs. The default lies in
/// the range systemd's UIDS-GIDS.md lists as unused (1879048192-2147483647): above useradd's
/// subordinate ids (100000-600100000) and the systemd-nspawn container ranges. count 0: no pool,
/// every run is sandbox_uid/sandbox_gid.
struct IdRange {
  std::uint32_t first = 0;
  std::uint32_t count = 0;
  bool operator==(const IdRange&) const = default;
};
inline constexpr IdRange default_native_ids{1879048192, 1024};
/// Most ids a pool may hold (the native root lists each in its /etc/passwd).
inline constexpr std::uint32_t max_native_ids = 4096;

/// Plain data a Sandbox is made from.
struct SandboxSpec {
  std::filesystem::path root_dir = "/tmp/pagi-sandbox";  ///< holds <twin_id>/<execution_id>/
  Isolation isolation = Isolation::cwd;
  Limits limits;
  std::filesystem::path bwrap_path = "/usr/bin/bwrap";
  /// The command's uid and gid (nobody/nogroup) in every mode when the server runs as root.
  /// A server that is not root cannot change uid: cwd and bwrap commands then run as its own.
  std::uint32_t sandbox_uid = 65534;
  std::uint32_t sandbox_gid = 65534;
  /// cwd and bwrap: keep the server's uid for commands (root when the server is root), as the
  /// original did. Unsafe; for compatibility only. Native always drops to sandbox_uid/gid.
  bool run_as_root = false;
  IdRange native_ids = default_native_ids;  ///< native, server as root: a uid/gid per run
  EgressSettings egress{};  ///< native: the egress proxy of twins with network = "egress"
  bool operator==(const SandboxSpec&) const = default;
};

/// A validated sandbox description. Making one touches nothing on disk; Executor::open creates
/// the root folder and check_isolation() (isolation_probe.hpp) probes that the isolation works.
class Sandbox {
 public:
  /// Errc::invalid_config when root_dir is not absolute, the timeout is not in (0, 1 day], an
  /// output cap is 0 or above 64 MiB, or the command's uid or gid is 0 without run_as_root.
  [[nodiscard]] static Result<Sandbox> make(SandboxSpec spec) {
    if (!spec.root_dir.is_absolute()) {
      return fail(Errc::invalid_config, "sandbox dir '" + spec.root_dir.string() + "' must be an absolute path");
    }
    if (spec.limits.timeout.count() <= 0 || spec.limits.timeout > max_timeout) {
      return fail(Errc::invalid_config, "timeout " + std::to_string(spec.limits.timeout.count()) +
                                            " ms must be between 1 and " +
                                            std::to_string(max_timeout.count()));
    }
    const auto& caps = spec.limits.output;
    if (caps.max_bytes == 0 || caps.max_bytes > max_output_bytes || caps.max_lines == 0) {
      return fail(Errc::invalid_config, "output caps must be at least 1 line and between 1 byte and 64 MiB");
    }
    if (spec.isolation == Isolation::native && (spec.sandbox_uid == 0 || spec.sandbox_gid == 0)) {
      return fail(Errc::invalid_config, "the native sandbox never runs commands as uid or gid 0");
    }
    if (!spec.run_as_root && (spec.sandbox_uid == 0 || spec.sandbox_gid == 0)) {
      return fail(Errc::invalid_config, "commands run as uid or gid 0 only with run_as_root (TOOLS_RUN_AS_ROOT)");
    }
    if (const auto& ids = spec.native_ids; ids.count != 0) {
      const std::uint64_t last = std::uint64_t{ids.first} + ids.count - 1;
      const auto holds = [&](std::uint64_t id) { return ids.first <= id && id <= last; };
      if (ids.count < 2 || ids.count > max_native_ids || last >= 0xFFFFFFFFULL || holds(0) || holds(65534) ||
          holds(65535)) {
        return fail(Errc::invalid_config, "uid pool " + std::to_string(ids.first) + ":" + std::to_string(ids.count) +
                                              " must hold 2 to " + std::to_string(max_native_ids) +
                                              " ids and not 0, 65534, 65535 or 4294967295");
      }
    }
    if (spec.isolation != Isolation::cwd && spec.limits.tmpfs_bytes < 4096) {
      return fail(Errc::invalid_config, "tmpfs size must be at least 4096 bytes");
    }
    if (spec.isolation == Isolation::bwrap && !spec.bwrap_path.is_absolute()) {
      return fail(Errc::invalid_config, "bwrap path '" + spec.bwrap_path.string() + "' must be absolute");
    }
    return Sandbox(std::move(spec));
  }

  [[nodiscard]] const SandboxSpec& spec() const noexcept { return spec_; }
  [[nodiscard]] const std::filesystem::path& root_dir() const noexcept { return spec_.root_dir; }
  [[nodiscard]] Isolation isolation() const noexcept { return spec_.isolation; }
  [[nodiscard]] const Limits& limits() const noexcept { return spec_.limits; }

  /// The same sandbox with another isolation kind (e.g. the documented fallback to cwd), validated
  /// again: each kind has rules of its own. Errors as make().
  [[nodiscard]] Result<Sandbox> with_isolation(Isolation isolation) const {
    auto spec = spec_;
    spec.isolation = isolation;
    return make(std::move(spec));
  }

  bool operator==(const Sandbox&) const = default;

 private:
  explicit Sandbox(SandboxSpec spec) : spec_(std::move(spec)) {}
  SandboxSpec spec_;
};

}  // namespace pagi_exec
