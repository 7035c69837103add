// SPDX-License-Identifier: Apache-2.0
#include "policy_watch.hpp"

#include <string_view>
#include <utility>

#include <sys/stat.h>

#include "log.hpp"
#include "metrics.hpp"

namespace tools_server {

namespace {

constexpr std::int64_t ns_per_s = 1'000'000'000;

std::int64_t nanoseconds(const timespec& t) { return static_cast<std::int64_t>(t.tv_sec) * ns_per_s + t.tv_nsec; }

}  // namespace

FileIdentity identify(const std::filesystem::path& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return {};
  return {.present = true,
          .device = st.st_dev,
          .inode = st.st_ino,
          .size = st.st_size,
          .mtime_ns = nanoseconds(st.st_mtim),
          .ctime_ns = nanoseconds(st.st_ctim)};
}

PolicyWatch::PolicyWatch(std::filesystem::path file) : file_(std::move(file)) {
  if (!file_.empty()) loaded_ = identify(file_);
}

void PolicyWatch::tick(pagi_exec::Host& host) {
  if (file_.empty()) return;
  const auto now = identify(file_);
  if (now == loaded_) {
    changed_.reset();  // changed and changed back, or loaded by SIGHUP meanwhile
    return;
  }
  if (changed_ != now) {
    changed_ = now;  // load it at the next tick if it stays as it is
    return;
  }
  log_policy_reload(load(host, now, "policy file changed"), host.executor()->policy().revision(), "file changed");
}

void PolicyWatch::reload_now(pagi_exec::Host& host) {
  const auto notices = load(host, file_.empty() ? FileIdentity{} : identify(file_), "SIGHUP");
  log_policy_reload(notices, host.executor()->policy().revision());
}

pagi_exec::Notices PolicyWatch::load(pagi_exec::Host& host, const FileIdentity& identity, std::string_view cause) {
  loaded_ = identity;  // before reading: a change during the load is seen at the next ticks
  changed_.reset();
  auto notices = host.reload_policy(cause);
  server_metrics().policy_reloaded(notices);
  return notices;
}

}  // namespace tools_server
