// SPDX-License-Identifier: Apache-2.0
// process_* from /proc/self: see proc(5) for the fields of stat, statm and limits.
#include "process_stats.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "metrics.hpp"

namespace tools_server {
namespace {

std::string read_text(const char* path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The fields of /proc/self/stat after "(comm) ", which may itself hold spaces and parentheses:
// fields[0] is field 3 (state).
std::vector<std::string> stat_fields() {
  const auto all = read_text("/proc/self/stat");
  const auto close = all.rfind(')');
  std::vector<std::string> fields;
  if (close == std::string::npos) return fields;
  std::istringstream in(all.substr(close + 1));
  for (std::string field; in >> field;) fields.push_back(field);
  return fields;
}

std::optional<std::uint64_t> number(const std::vector<std::string>& fields, std::size_t field) {
  if (field < 3 || field - 3 >= fields.size()) return std::nullopt;
  try {
    return std::stoull(fields[field - 3]);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// "btime <seconds since the epoch>" in /proc/stat: when the host booted.
std::optional<std::uint64_t> boot_time() {
  std::istringstream in(read_text("/proc/stat"));
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("btime ")) return std::stoull(line.substr(6));
  }
  return std::nullopt;
}

// "Max open files            1024                 1048576              files"
std::optional<std::uint64_t> max_open_files() {
  std::istringstream in(read_text("/proc/self/limits"));
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with("Max open files")) continue;
    std::istringstream words(line.substr(14));
    std::string soft;
    words >> soft;
    if (soft == "unlimited" || soft.empty()) return std::nullopt;
    return std::stoull(soft);
  }
  return std::nullopt;
}

std::optional<std::uint64_t> count_open_fds() {
  std::error_code ec;
  std::uint64_t count = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec)) ++count;
  if (ec) return std::nullopt;
  return count > 0 ? count - 1 : 0;  // the iterator's own descriptor
}

}  // namespace

ProcessStats read_process_stats() {
  ProcessStats stats;
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const auto fields = stat_fields();
  const auto user = number(fields, 14);
  const auto system = number(fields, 15);
  if (user && system && ticks > 0) stats.cpu_seconds = static_cast<double>(*user + *system) / ticks;
  stats.threads = number(fields, 20);
  const auto start = number(fields, 22);
  try {
    const auto boot = boot_time();
    if (start && boot && ticks > 0) stats.start_time_seconds = static_cast<double>(*boot) + static_cast<double>(*start) / ticks;
    stats.max_fds = max_open_files();
  } catch (const std::exception&) {  // stoull on a malformed file: the figure stays unset
  }
  std::istringstream statm(read_text("/proc/self/statm"));
  std::uint64_t size_pages = 0;
  std::uint64_t resident_pages = 0;
  if (statm >> size_pages >> resident_pages) {
    stats.resident_bytes = resident_pages * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  }
  stats.open_fds = count_open_fds();
  return stats;
}

void render_process_stats(TextWriter& writer, const ProcessStats& stats) {
  const auto add = [&](const char* name, const char* help, const char* type, const auto& value) {
    if (!value) return;
    writer.family(name, help, type);
    writer.sample(name, {}, *value);
  };
  add("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", "counter", stats.cpu_seconds);
  add("process_resident_memory_bytes", "Resident memory size in bytes.", "gauge", stats.resident_bytes);
  add("process_open_fds", "Number of open file descriptors.", "gauge", stats.open_fds);
  add("process_max_fds", "Maximum number of open file descriptors.", "gauge", stats.max_fds);
  add("process_threads", "Number of OS threads in the process.", "gauge", stats.threads);
  add("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", "gauge",
      stats.start_time_seconds);
}

}  // namespace tools_server
