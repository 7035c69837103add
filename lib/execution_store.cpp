// SPDX-License-Identifier: Apache-2.0
// ExecutionStore: choosing and opening a backend by its location; node ids.
#include "pagi_exec/execution_store.hpp"

#include "pagi_exec/history.hpp"
#include "postgres_store.hpp"
#include "queued_store.hpp"
#include "sqlite_store.hpp"

#include <algorithm>
#include <array>
#include <fstream>

namespace pagi_exec {

std::vector<Result<void>> ExecutionStore::record_all(std::vector<ExecutionRecord> entries) {
  std::vector<Result<void>> results;
  results.reserve(entries.size());
  for (auto& entry : entries) results.push_back(record(std::move(entry)));
  return results;
}

namespace {
constexpr std::string_view sqlite_prefix = "sqlite:";
// libpq's two URI schemes (see "Connection URIs" in the libpq manual).
constexpr std::array<std::string_view, 2> postgres_prefixes = {"postgresql://", "postgres://"};

// Replaces what follows `key` up to the first of `ends` by "***".
void mask_after(std::string& text, std::size_t from, std::string_view key, std::string_view ends) {
  for (auto at = text.find(key, from); at != std::string::npos; at = text.find(key, at + 1)) {
    const auto start = at + key.size();
    const auto end = std::min(text.find_first_of(ends, start), text.size());
    text.replace(start, end - start, "***");
  }
}
}  // namespace

std::string masked_uri(std::string_view uri) {
  std::string text(uri);
  const auto scheme = text.find("://");
  if (scheme == std::string::npos) return text;
  const auto authority = scheme + 3;
  const auto authority_end = std::min(text.find_first_of("/?", authority), text.size());
  // user:password@host: the password runs from the first ':' to the last '@' of the authority.
  const auto at = text.rfind('@', authority_end);
  if (at != std::string::npos && at >= authority) {
    const auto colon = text.find(':', authority);
    if (colon < at) text.replace(colon + 1, at - colon - 1, "***");
  }
  const auto query = text.find('?', authority);
  if (query != std::string::npos) {
    mask_after(text, query, "?password=", "&");
    mask_after(text, query, "&password=", "&");
  }
  return text;
}


Result<StoreSettings> parse_store_location(std::string_view text, StoreSettings settings) {
  if (text == "memory") {
    settings.kind = StoreSettings::Kind::memory;
    settings.path.clear();
    return settings;
  }
  if (text.starts_with(sqlite_prefix)) {
    std::filesystem::path path(text.substr(sqlite_prefix.size()));
    if (!path.is_absolute() || path.filename().empty()) {
      return fail(Errc::invalid_config, "'" + std::string(text) + "': sqlite: needs an absolute file path");
    }
    settings.kind = StoreSettings::Kind::sqlite;
    settings.path = std::move(path);
    return settings;
  }
  for (const auto prefix : postgres_prefixes) {
    if (!text.starts_with(prefix)) continue;
    settings.kind = StoreSettings::Kind::postgresql;
    settings.path.clear();
    settings.uri = std::string(text);
    return settings;
  }
  return fail(Errc::invalid_config, "'" + masked_uri(text) +
                                        "' is not 'memory', 'sqlite:/absolute/file.db' or 'postgresql://...'");
}

std::string to_string(const StoreSettings& settings) {
  switch (settings.kind) {
    case StoreSettings::Kind::memory: return "memory";
    case StoreSettings::Kind::sqlite: return std::string(sqlite_prefix) + settings.path.string();
    case StoreSettings::Kind::postgresql: return masked_uri(settings.uri);
  }
  return "memory";
}

Result<std::shared_ptr<ExecutionStore>> open_execution_store(const StoreSettings& settings, NoticeSink notify) {
  const detail::QueueSpec queue{.max_records = settings.queue_records, .max_bytes = settings.queue_bytes};
  switch (settings.kind) {
    case StoreSettings::Kind::memory:
      return std::make_shared<History>(settings.max_records, settings.output_budget_bytes);
    case StoreSettings::Kind::sqlite:
      return detail::SqliteStore::open(settings).map([&](std::shared_ptr<detail::SqliteStore> store) {
        auto checkpoint = [sqlite = store.get()] { return sqlite->checkpoint(); };  // the queue owns the store
        return std::shared_ptr<ExecutionStore>(
            std::make_shared<detail::QueuedStore>(std::move(store), queue, std::move(notify), checkpoint));
      });
    case StoreSettings::Kind::postgresql:
      return detail::PostgresStore::open(settings).map([&](std::shared_ptr<detail::PostgresStore> store) {
        return std::shared_ptr<ExecutionStore>(
            std::make_shared<detail::QueuedStore>(std::move(store), queue, std::move(notify)));
      });
  }
  return fail(Errc::invalid_config, "unknown history store");
}

Result<void> validate_node_id(std::string_view node) {
  const auto safe = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
           c == '_';
  };
  const bool starts_well = !node.empty() && safe(node.front()) && node.front() != '.' && node.front() != '-' &&
                           node.front() != '_';
  if (!starts_well || node.size() > max_node_id_bytes || !std::all_of(node.begin(), node.end(), safe)) {
    return fail(Errc::invalid_config, "node id '" + std::string(node.substr(0, max_node_id_bytes + 1)) +
                                          "' is not 1 to " + std::to_string(max_node_id_bytes) +
                                          " letters, digits, '.', '-' or '_' starting with a letter or digit");
  }
  return {};
}

Result<std::string> node_id_or_host_name(std::string_view configured) {
  if (!configured.empty()) return validate_node_id(configured).map([&] { return std::string(configured); });
  std::ifstream file("/proc/sys/kernel/hostname");  // the kernel's uname -n, without a syscall here
  std::string name;
  std::getline(file, name);
  if (auto valid = validate_node_id(name); !valid) {
    return fail(Errc::invalid_config, "unset, and the host name is no node id (" + valid.error().context + "): set one");
  }
  return name;
}

}  // namespace pagi_exec
