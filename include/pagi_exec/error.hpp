// SPDX-License-Identifier: Apache-2.0
// Error values of the library: a small code, the errno captured at the failing call, and context.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include <tl/expected.hpp>

namespace pagi_exec {

/// What kind of failure an Error is. Spelled like std::errc; named by to_string().
enum class Errc : std::uint8_t {
  invalid_request,  ///< the request itself is malformed (bad twin id, bad path, missing argument)
  invalid_config,   ///< a PolicySpec / SandboxSpec value that cannot be honoured
  sandbox_setup,    ///< preparing the workspace or isolation failed
  spawn_failed,     ///< the process could not be started
  io,               ///< reading, writing or waiting failed
  audit_unavailable,  ///< the audit log is required and could not record: nothing was run
  resource_exhausted,  ///< a concurrency limit or the memory budget is reached: nothing was run
  internal,         ///< a broken invariant: a bug in pagi-exec
};

/// Stable lower-case name of an error code. Thread-safe.
[[nodiscard]] constexpr const char* to_string(Errc code) noexcept {
  switch (code) {
    case Errc::invalid_request: return "invalid_request";
    case Errc::invalid_config: return "invalid_config";
    case Errc::sandbox_setup: return "sandbox_setup";
    case Errc::spawn_failed: return "spawn_failed";
    case Errc::io: return "io";
    case Errc::audit_unavailable: return "audit_unavailable";
    case Errc::resource_exhausted: return "resource_exhausted";
    case Errc::internal: return "internal";
  }
  return "unknown";
}

/// A failure: code, errno at the failing system call (0 if none) and what was being done.
struct Error {
  Errc code = Errc::internal;
  int sys_errno = 0;
  std::string context;  ///< e.g. "mkdir /tmp/pagi-sandbox/twin-a": what, where

  /// An error without errno: `Error::make(Errc::invalid_request, "twin_id is empty")`.
  [[nodiscard]] static Error make(Errc code, std::string context) {
    return Error{code, 0, std::move(context)};
  }
  /// An error from a failed system call; `operation` names the call and its operand.
  [[nodiscard]] static Error from_errno(Errc code, int err, std::string operation) {
    return Error{code, err, std::move(operation)};
  }

  /// "context: strerror(errno)", or just the context when there is no errno.
  [[nodiscard]] std::string message() const {
    if (sys_errno == 0) return context;
    return context + ": " + std::strerror(sys_errno);
  }

  bool operator==(const Error&) const = default;
};

/// Every fallible library call returns Result<T>; functions returning it are [[nodiscard]].
template <class T>
using Result = tl::expected<T, Error>;

/// Shorthand to return a failure: `return fail(Errc::io, "read stdout");`.
[[nodiscard]] inline tl::unexpected<Error> fail(Errc code, std::string context, int err = 0) {
  return tl::unexpected<Error>(Error{code, err, std::move(context)});
}

// Passing a failure up, the one idiom of the library (tl::expected 1.0.0 has no operator for it,
// and a macro would hide a return):
//  - steps that feed each other chain: `table(node).and_then(read_twin).map(to_policy)`;
//    a Result<void> step chains with a lambda taking nothing: `.and_then([&] { return next(); })`;
//  - context is added on the way up: `.map_error(add_context(path + ": "))`;
//  - where a function checks things in turn, a failure leaves with `if (!x) return error_of(x);`
//    (a Result<void> into a Result<void> function needs neither: `if (!x) return x;`).

/// The failure of `result`, to return from a function whose Result holds another type.
template <class T>
[[nodiscard]] tl::unexpected<Error> error_of(const Result<T>& result) {
  return tl::unexpected<Error>(result.error());
}
template <class T>
[[nodiscard]] tl::unexpected<Error> error_of(Result<T>&& result) {
  return tl::unexpected<Error>(std::move(result).error());
}

/// For map_error: puts `prefix` before an error's context ("policy.toml: " + "twin name ...").
[[nodiscard]] inline auto add_context(std::string prefix) {
  return [prefix = std::move(prefix)](Error error) {
    error.context.insert(0, prefix);
    return error;
  };
}

}  // namespace pagi_exec
