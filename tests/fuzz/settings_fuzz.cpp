// SPDX-License-Identifier: Apache-2.0
// Fuzz target: the server's settings (config.cpp's table): any command line, one word a line,
// parsed by CLI11 as main() does, then interpreted by resolve_settings.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include <CLI/CLI.hpp>

#include "config.hpp"
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto words = fuzz::lines(fuzz::as_text(data, size));
  std::reverse(words.begin(), words.end());  // CLI::App::parse(vector) takes the words last first
  CLI::App app;
  tools_server::RawSettings raw;
  tools_server::add_settings(app, raw);
  try {
    app.parse(words);
  } catch (const CLI::ParseError&) {
    return 0;  // main() prints CLI11's message and exits: nothing of ours is reached
  }
  const auto config = tools_server::resolve_settings(raw);
  if (!config) {
    fuzz::check(config.error().code == pagi_exec::Errc::invalid_config, "a bad setting is invalid_config");
    const auto message = config.error().message();
    fuzz::check(message.find('\n') == std::string::npos, "the message is one line");
    fuzz::check(message.find(" / --") != std::string::npos || message.find("TOOLS_") != std::string::npos,
                "the message names the setting");
    return 0;
  }
  fuzz::check(!config->listen.empty(), "a resolved configuration listens somewhere");
  return 0;
}
