// SPDX-License-Identifier: Apache-2.0
// One loopback-only network namespace, shared by native executions (see network_namespaces(7)).
//
// Sharing is deliberate: executions can reach each other's listeners on 127.0.0.1 while both run,
// but nothing on the host and nothing beyond it. A namespace per execution would cost ~0.7 ms.
#include "sys/netns.hpp"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace pagi_exec::sys {

// In the namespace's first process: ifconfig lo up (the only interface a new netns has).
int bring_up_loopback_in_child() noexcept {
  const int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return errno;
  ifreq req{};
  req.ifr_name[0] = 'l';  // no strncpy: this runs between fork and exec
  req.ifr_name[1] = 'o';
  int err = 0;
  if (::ioctl(sock, SIOCGIFFLAGS, &req) != 0) {
    err = errno;
  } else {
    req.ifr_flags = static_cast<short>(req.ifr_flags | IFF_UP | IFF_RUNNING);
    if (::ioctl(sock, SIOCSIFFLAGS, &req) != 0) err = errno;
  }
  ::close(sock);
  return err;
}

Result<unique_fd> make_loopback_netns() {
  // A short-lived child creates the namespace and waits; we open its /proc/<pid>/ns/net, which
  // keeps the namespace alive after the child exits.
  int sync[2];
  if (::pipe2(sync, O_CLOEXEC) != 0) return fail(Errc::sandbox_setup, "pipe2", errno);
  unique_fd read_end(sync[0]), write_end(sync[1]);  // the child's report, one int
  const auto child = static_cast<pid_t>(::syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, 0, 0, 0, 0));
  if (child < 0) return fail(Errc::sandbox_setup, "clone(CLONE_NEWNET) for the shared network namespace", errno);
  if (child == 0) {
    int err = bring_up_loopback_in_child();
    (void)::write(sync[1], &err, sizeof err);
    for (;;) ::pause();  // until the parent, having opened our namespace, kills us
  }
  int err = 0;
  const auto got = ::read(read_end.get(), &err, sizeof err);
  unique_fd ns(::open(("/proc/" + std::to_string(child) + "/ns/net").c_str(), O_RDONLY | O_CLOEXEC));
  const int open_errno = errno;
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  if (got != static_cast<ssize_t>(sizeof err)) return fail(Errc::sandbox_setup, "network namespace child died");
  if (err != 0) return fail(Errc::sandbox_setup, "bring up lo in the sandbox network namespace", err);
  if (!ns) return fail(Errc::sandbox_setup, "open the sandbox network namespace", open_errno);
  return ns;
}

int join_netns_in_child(int netns_fd) noexcept {
  return ::setns(netns_fd, CLONE_NEWNET) == 0 ? 0 : errno;
}

}  // namespace pagi_exec::sys
