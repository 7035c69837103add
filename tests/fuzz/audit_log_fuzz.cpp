// SPDX-License-Identifier: Apache-2.0
// Fuzz target: the audit reader (read_audit_log) and the chain verifier (verify_audit_chain) on
// any file content. A form feed splits the input into two files (rotated, then current), so the
// verifier's walk across files is fuzzed too.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <pagi_exec/audit.hpp>

#include "fuzz_input.hpp"

namespace {

// One scratch folder per process: libFuzzer runs inputs one after the other in a process, and
// parallel jobs are separate processes.
const std::filesystem::path& scratch() {
  static const auto folder = [] {
    auto path = std::filesystem::temp_directory_path() / ("pagi-exec-audit-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(path);
    return path;
  }();
  return folder;
}

std::filesystem::path write(const std::string& name, std::string_view content) {
  auto path = scratch() / name;
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(content.data(), static_cast<std::streamsize>(content.size()));
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = fuzz::as_text(data, size);
  const auto split = text.find('\f');
  std::vector<std::filesystem::path> files;
  if (split != std::string_view::npos) files.push_back(write("audit.jsonl.1", text.substr(0, split)));
  files.push_back(write("audit.jsonl", split == std::string_view::npos ? text : text.substr(split + 1)));

  const auto report = pagi_exec::read_audit_log(files.back(), {});
  fuzz::check(report.has_value(), "a readable file always gives a report");
  fuzz::check(report->torn_lines <= 1, "at most the last line is torn");
  fuzz::check(report->entries.size() + report->torn_lines + report->bad_lines <= report->lines,
              "every line is a record, torn or bad");
  fuzz::check(report->decisions + report->executions + report->auth_rejected == report->entries.size(),
              "every record is counted once by type");
  if (!report->entries.empty()) {
    const auto by_twin = pagi_exec::read_audit_log(files.back(), {.twin = report->entries.front().twin_id});
    fuzz::check(by_twin && !by_twin->entries.empty(), "filtering by a record's twin finds it");
  }
  const auto bad_filter = pagi_exec::read_audit_log(files.back(), {.outcome = std::string("no such outcome")});
  fuzz::check(!bad_filter && bad_filter.error().code == pagi_exec::Errc::invalid_request,
              "an unknown outcome filter is invalid_request");

  const auto chain = pagi_exec::verify_audit_chain(files);
  fuzz::check(chain.has_value(), "readable files always give a chain report");
  fuzz::check(chain->files == files.size(), "every file is walked");
  fuzz::check(chain->intact == chain->problem.empty(), "a break, and only a break, is described");
  if (!chain->intact) {
    fuzz::check(chain->problem.find(scratch().string()) == 0, "a break names its file");
  }
  return 0;
}
