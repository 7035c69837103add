// SPDX-License-Identifier: Apache-2.0
// The uid/gid maps of a user namespace, written by its parent (see user_namespaces(7)).
#include "sys/userns.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "sys/unique_fd.hpp"

namespace pagi_exec::sys {
namespace {

// A map file takes one write(2); a short write is an error (user_namespaces(7)).
Result<void> write_proc_file(const std::string& path, const std::string& text) {
  unique_fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return fail(Errc::sandbox_setup, "open " + path, errno);
  const auto n = ::write(fd.get(), text.data(), text.size());
  if (n != static_cast<ssize_t>(text.size())) return fail(Errc::sandbox_setup, "write " + path, n < 0 ? errno : EIO);
  return {};
}

std::string one_id_map(std::uint32_t inside, std::uint32_t outside) {
  return std::to_string(inside) + " " + std::to_string(outside) + " 1\n";
}

}  // namespace

Result<void> write_id_maps_from_parent(pid_t pid, std::uint32_t uid, std::uint32_t gid) {
  const auto dir = "/proc/" + std::to_string(pid) + "/";
  return write_proc_file(dir + "setgroups", "deny")
      .and_then([&] { return write_proc_file(dir + "uid_map", one_id_map(uid, ::getuid())); })
      .and_then([&] { return write_proc_file(dir + "gid_map", one_id_map(gid, ::getgid())); });
}

}  // namespace pagi_exec::sys
