// SPDX-License-Identifier: Apache-2.0
// bare-server's whole execution: posix_spawnp a command with stdout and stderr on pipes, read both
// to the end, reap it. No sandbox, limits or caps: the ceiling a sandboxed server is measured against.
#pragma once

#include <string>
#include <vector>

namespace bare_server {

struct ProcessResult {
  int exit_code = 0;  // the exit status, 128+N for signal N, 127 when it could not be started
  std::string out;    // everything it wrote to stdout
  std::string err;    // and to stderr; the spawn error when it could not be started
};

/// Runs argv (argv[0] looked up in PATH) with stdin on /dev/null and waits for it.
[[nodiscard]] ProcessResult run_process(const std::vector<std::string>& argv);

}  // namespace bare_server
