// SPDX-License-Identifier: Apache-2.0
// pagi-spawner: the spawn helper as a small static program. A host's fork execs it (see
// pagi_exec::start_spawn_helper) with the socket to serve and the host's signal mask; it is not
// meant to be run by hand. Static, so it maps a handful of areas instead of the host's shared
// libraries: each clone of a run's supervisor or init copies its mappings, each exit unmaps them.
#include <fcntl.h>
#include <signal.h>

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <string_view>

#include "sys/spawn_helper_process.hpp"

namespace {

template <typename T>
bool parse(std::string_view text, T& value) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size();
}

}  // namespace

int main(int argc, char** argv) {
  int socket = -1;
  std::uint64_t mask_bits = 0;
  if (argc != 3 || !parse(argv[1], socket) || !parse(argv[2], mask_bits) || socket < 3 ||
      ::fcntl(socket, F_SETFD, FD_CLOEXEC) != 0) {
    std::fputs("pagi-spawner: started by pagi-exec hosts (pagi_exec::start_spawn_helper), not by hand\n", stderr);
    return 2;
  }
  sigset_t server_mask;
  ::sigemptyset(&server_mask);
  for (int sig = 1; sig <= 64; ++sig) {
    if ((mask_bits >> (sig - 1)) & 1U) ::sigaddset(&server_mask, sig);
  }
  pagi_exec::sys::run_spawn_helper(socket, server_mask, pagi_exec::sys::HelperKind::program);
}
