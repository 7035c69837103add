// SPDX-License-Identifier: Apache-2.0
// What the server sends the spawn helper (spawn_helper.hpp): one run's child arguments as bytes,
// and a native spawner's fixed part (root plan, seccomp filter) in a sealed memfd.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pagi_exec/error.hpp"
#include "sys/mountns.hpp"
#include "sys/native.hpp"
#include "sys/rlimits.hpp"
#include "sys/seccomp.hpp"
#include "sys/supervisor.hpp"
#include "sys/unique_fd.hpp"

namespace pagi_exec::sys {

/// The most bytes one run's message may take. Far above a usual plan (a few KB of argv and
/// environment) and below the socket's default buffer; a larger plan is cloned by the server.
inline constexpr std::size_t max_run_message_bytes = 64 * 1024;
/// The most descriptors one run's message carries (SCM_RIGHTS).
inline constexpr std::size_t max_run_fds = 16;

/// One run's message: bytes, and the descriptors that go with them (borrowed, in the order the
/// bytes name them).
struct RunMessage {
  std::string bytes;
  std::vector<int> fds;
};

/// Encodes what the helper needs to clone one run's tree root: `args` (and `native` for a native
/// init, whose root plan and filter travel in `native_shared`, see seal_native_shared), the maps
/// pipe of a user-namespaced init, and `reply`, the helper's end of the run's socket.
[[nodiscard]] RunMessage encode_run(const ChildArgs& args, const NativeArgs* native, int maps_fd, int native_shared,
                                    int reply);

/// A run as the helper decoded it: `args` and `native` point into this object's strings and
/// descriptors (it never moves: held by unique_ptr). native->root and native->seccomp are left
/// for the helper to fill from native_shared.
class ReceivedRun {
 public:
  /// Errc::internal when the bytes or the descriptors do not match the format.
  [[nodiscard]] static Result<std::unique_ptr<ReceivedRun>> decode(std::string_view bytes,
                                                                   std::vector<unique_fd> fds);
  ReceivedRun(const ReceivedRun&) = delete;
  ReceivedRun& operator=(const ReceivedRun&) = delete;
  ~ReceivedRun() = default;

  /// Forgets the run's descriptors without closing them: for a process that closed them itself
  /// (a pooled supervisor closes some during the run, then all the rest by number).
  void forget_descriptors() noexcept {
    for (auto& fd : fds_) (void)fd.release();
  }

  ChildArgs args;
  std::optional<NativeArgs> native;
  int maps_fd = -1;
  int native_shared = -1;
  int reply = -1;  ///< -1 in a message to a pooled supervisor (supervisor_pool.hpp)

 private:
  ReceivedRun() = default;
  std::vector<std::string> argv_, env_;
  std::vector<const char*> argv_ptrs_, env_ptrs_;
  std::string cwd_, workspace_, work_options_;
  RlimitSet rlimits_;
  std::vector<unique_fd> fds_;
};

/// A native spawner's part of every run, as the helper keeps it.
struct NativeShared {
  RootPlan root;
  SeccompProgram seccomp;
};

/// Writes `root` and `seccomp` into a memfd sealed against any change, so the helper may parse it
/// once and cache it by inode. Errc::sandbox_setup.
[[nodiscard]] Result<unique_fd> seal_native_shared(const RootPlan& root, const SeccompProgram& seccomp);

/// Reads a memfd made by seal_native_shared (refused unless sealed). Errc::internal.
[[nodiscard]] Result<NativeShared> read_native_shared(int fd);

}  // namespace pagi_exec::sys
