// SPDX-License-Identifier: Apache-2.0
// Runs inside a sandbox (copied into a twin's workspace): makes every call of the deny-list and a
// few refused socket families, and prints "<name> <errno>" per line (0: the call succeeded).
// Linked statically, so it runs whatever libraries the sandbox shows.
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "denied_calls.hpp"

namespace {

void report(const char* name, long result) { std::printf("%s %d\n", name, result < 0 ? errno : 0); }

void try_socket(const char* name, int family, int type, int protocol) {
  const int fd = ::socket(family, type, protocol);
  report(name, fd);
  if (fd >= 0) ::close(fd);
}

}  // namespace

int main() {
  for (const auto& call : test_support::kAlwaysDenied) {
    const auto& a = call.args;
    report(call.name, ::syscall(call.nr, a[0], a[1], a[2], a[3], a[4], a[5]));
  }
  try_socket("socket(AF_VSOCK)", AF_VSOCK, SOCK_STREAM, 0);
  try_socket("socket(AF_PACKET)", AF_PACKET, SOCK_RAW, 0);
  try_socket("socket(AF_KEY)", AF_KEY, SOCK_RAW, 2);
  try_socket("socket(AF_ALG)", AF_ALG, SOCK_SEQPACKET, 0);
  try_socket("socket(AF_NETLINK, NETLINK_AUDIT)", AF_NETLINK, SOCK_RAW, 9);
  return 0;
}
