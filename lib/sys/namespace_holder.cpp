// SPDX-License-Identifier: Apache-2.0
// A namespace made by a child and held by the parent's descriptor (see namespaces(7)).
#include "sys/namespace_holder.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace pagi_exec::sys {

Result<HeldNamespace> hold_namespace(unsigned long clone_flags, const char* ns_name, BuildInChild build,
                                     const void* arg) {
  int sync[2];
  if (::pipe2(sync, O_CLOEXEC) != 0) return fail(Errc::sandbox_setup, "pipe2", errno);
  unique_fd read_end(sync[0]), write_end(sync[1]);  // the child's BuildReport
  // A raw clone: no atfork handlers run in the child (see child.hpp).
  const auto child = static_cast<pid_t>(::syscall(SYS_clone, clone_flags | SIGCHLD, 0, 0, 0, 0));
  if (child < 0) {
    return fail(Errc::sandbox_setup, std::string("clone a child to hold a new ") + ns_name + " namespace", errno);
  }
  if (child == 0) {
    const BuildReport report = build(arg);
    (void)::write(sync[1], &report, sizeof report);
    for (;;) ::pause();  // until the parent, having opened our namespace, kills us
  }
  write_end.reset();  // a child that dies without a report is then an EOF, not a hang
  BuildReport report;
  ssize_t got = 0;
  while ((got = ::read(read_end.get(), &report, sizeof report)) < 0 && errno == EINTR) {}
  const auto path = "/proc/" + std::to_string(child) + "/ns/" + ns_name;
  HeldNamespace held{unique_fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)), {}};
  const int open_errno = errno;
  ::kill(child, SIGKILL);
  while (::waitpid(child, nullptr, 0) < 0 && errno == EINTR) {}
  if (got != static_cast<ssize_t>(sizeof report)) {
    return fail(Errc::sandbox_setup, std::string("the child building a ") + ns_name + " namespace died");
  }
  if (report.step != 0) {
    held.ns.reset();
    held.failed = report;
    return held;
  }
  if (!held.ns) return fail(Errc::sandbox_setup, "open " + path, open_errno);
  return held;
}

}  // namespace pagi_exec::sys
