// SPDX-License-Identifier: Apache-2.0
// parse_policy / load_policy_file: a strict reading of the TOML policy file with toml++.
// Included by policy_file.hpp; only translation units that read policy files see toml++.
#pragma once

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

// toml++ reports a syntax error by throwing toml::parse_error (Debian builds it with exceptions):
// the one call that can throw is inside parse_toml(), which turns it into an Error.
#include <toml++/toml.h>

#include "pagi_exec/detail/policy_names.hpp"
#include "pagi_exec/error.hpp"
#include "pagi_exec/paths.hpp"
#include "pagi_exec/policy.hpp"
#include "pagi_exec/policy_file.hpp"
#include "pagi_exec/program_name.hpp"
#include "pagi_exec/sandbox.hpp"
#include "pagi_exec/tool_catalog.hpp"

namespace pagi_exec::detail::policy_toml {

using Keys = std::span<const std::string_view>;

inline constexpr std::array<std::string_view, 5> top_keys{"safe_mode", "always_refused", "safe_mode_limits", "twins",
                                                          "tools"};
inline constexpr std::array<std::string_view, 6> twin_keys{"allow",         "deny",         "network",
                                                           "allow_domains", "deny_domains", "limits"};
inline constexpr std::array<std::string_view, 7> limit_keys{"timeout_ms",   "memory_mb",   "max_processes",
                                                            "output_bytes", "output_lines", "max_running",
                                                            "workspace_mb"};
inline constexpr std::array<std::string_view, 2> tool_keys{"program", "args"};

// The count limits: key, field, unit in bytes (or 1), largest value accepted.
struct CountLimit {
  std::string_view key;
  std::optional<std::uint64_t> TwinLimits::*field;
  std::uint64_t unit;
  std::int64_t max;
};
inline constexpr std::array<CountLimit, 6> count_limits{{
    {"memory_mb", &TwinLimits::memory_bytes, std::uint64_t{1} << 20, std::int64_t{1} << 20},  // 1 TiB
    {"max_processes", &TwinLimits::max_processes, 1, std::int64_t{1} << 22},                   // pid_max
    {"output_bytes", &TwinLimits::output_bytes, 1, std::int64_t{1} << 30},
    {"output_lines", &TwinLimits::output_lines, 1, std::int64_t{1} << 30},
    {"max_running", &TwinLimits::max_running, 1, 4096},  // as TOOLS_MAX_CONCURRENCY
    {"workspace_mb", &TwinLimits::workspace_bytes, std::uint64_t{1} << 20, std::int64_t{1} << 20},  // 1 TiB
}};

[[nodiscard]] inline std::string_view type_name(toml::node_type type) noexcept {
  switch (type) {
    case toml::node_type::none: return "nothing";
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a floating-point number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
  }
  return "a value";
}

[[nodiscard]] inline std::string list(Keys keys) {
  std::string s;
  for (const auto key : keys) s += (s.empty() ? "" : ", ") + std::string(key);
  return s;
}

// Reads `table[key]` with `read` into `field`, when the key is there: each key of a table is one
// line of a chain, `known_keys(...).and_then([&] { return read_key(...); })`.
template <class T, class Read>
[[nodiscard]] Result<void> read_key(const toml::table& table, std::string_view key, T& field, Read read) {
  const toml::node* node = table.get(key);
  if (node == nullptr) return {};
  return read(*node).map([&](T value) { field = std::move(value); });
}

// Reads the parsed document; every failure names the source, line and column.
class Reader {
 public:
  explicit Reader(std::string_view source) : source_(source) {}

  [[nodiscard]] tl::unexpected<Error> fail_at(const toml::source_region& at, const std::string& what,
                                              const std::string& fix) const {
    return fail(Errc::invalid_config, std::string(source_) + ":" + std::to_string(at.begin.line) + ":" +
                                          std::to_string(at.begin.column) + ": " + what + "; " + fix);
  }

  [[nodiscard]] Result<void> known_keys(const toml::table& table, Keys keys, const std::string& where) const {
    for (const auto& [key, node] : table) {
      if (std::find(keys.begin(), keys.end(), key.str()) != keys.end()) continue;
      const auto guess = closest(key.str(), keys);
      return fail_at(key.source(), "unknown key '" + std::string(key.str()) + "' in " + where,
                     (guess.empty() ? "" : "did you mean '" + std::string(guess) + "'? ") + "the keys here are " +
                         list(keys) + " (see docs/policy.md)");
    }
    return {};
  }

  [[nodiscard]] Result<const toml::table*> table(const toml::node& node, const std::string& where,
                                                 const std::string& fix) const {
    if (const auto* t = node.as_table()) return t;
    return fail_at(node.source(), where + " must be a table, not " + std::string(type_name(node.type())), fix);
  }

  [[nodiscard]] Result<bool> boolean(const toml::node& node, const std::string& where) const {
    if (const auto* b = node.as_boolean()) return b->get();
    return fail_at(node.source(), where + " must be a boolean, not " + std::string(type_name(node.type())),
                   "write " + where.substr(where.rfind('.') + 1) + " = true or false, without quotes");
  }

  // An array of strings, each made a T by `read(text)` (or refused with its place), none twice.
  // `list_example` and `item_example` show how to write the list and one entry.
  template <class T, class Read>
  [[nodiscard]] Result<std::vector<T>> string_list(const toml::node& node, const std::string& where,
                                                   std::string_view list_example, std::string_view item_example,
                                                   Read read) const {
    const auto* array = node.as_array();
    if (array == nullptr) {
      return fail_at(node.source(), where + " must be an array of strings, not " + std::string(type_name(node.type())),
                     "write " + where.substr(where.rfind('.') + 1) + " = " + std::string(list_example));
    }
    std::vector<T> out;
    for (std::size_t i = 0; i < array->size(); ++i) {
      const toml::node& item = *array->get(i);
      const std::string at = where + "[" + std::to_string(i) + "]";
      const auto* s = item.as_string();
      if (s == nullptr) {
        return fail_at(item.source(), at + " must be a string, not " + std::string(type_name(item.type())),
                       "quote it: " + std::string(item_example));
      }
      auto value = read(item, at, s->get());
      if (!value) return error_of(std::move(value));
      if (std::find(out.begin(), out.end(), *value) != out.end()) {
        return fail_at(item.source(), "'" + s->get() + "' is listed twice in " + where, "list each entry once");
      }
      out.push_back(std::move(*value));
    }
    return out;
  }

  [[nodiscard]] Result<std::vector<std::string>> names(const toml::node& node, const std::string& where,
                                                       NameRule rule) const {
    return string_list<std::string>(
        node, where, "[\"...\", \"...\"]", "\"name\"",
        [&](const toml::node& item, const std::string& at, const std::string& name) -> Result<std::string> {
          if (const auto why = why_not_name(name, rule); !why.empty()) {
            return fail_at(item.source(), at + " '" + name + "' " + why, name_fix(rule));
          }
          return name;
        });
  }

  // network = "none" | "egress" | "host". The boolean of earlier versions is refused with what to
  // write instead: `true` meant the host's whole network, which is now a deliberate choice.
  [[nodiscard]] Result<NetworkAccess> network(const toml::node& node, const std::string& where) const {
    if (const auto* b = node.as_boolean()) {
      return fail_at(node.source(), where + " = " + (b->get() ? "true" : "false") + " is the old boolean form",
                     b->get() ? "write network = \"egress\" with allow_domains = [\"pypi.org\", ...] to reach named "
                                "domains through the egress proxy, or network = \"host\" for the host's whole network "
                                "(the server must also set TOOLS_ALLOW_HOST_NETWORK=true)"
                              : "write network = \"none\", or remove the key: no network is the default");
    }
    const auto* s = node.as_string();
    for (const auto access : {NetworkAccess::none, NetworkAccess::egress, NetworkAccess::host}) {
      if (s != nullptr && s->get() == to_string(access)) return access;
    }
    const std::string what = s != nullptr ? "'" + s->get() + "'" : std::string(type_name(node.type()));
    return fail_at(node.source(), where + " must be \"none\", \"egress\" or \"host\", not " + what,
                   "write network = \"egress\" with allow_domains for named domains through the proxy, "
                   "\"host\" for the host's network, or leave it out for none");
  }

  // allow_domains / deny_domains: host patterns ("pypi.org", "*.pythonhosted.org", "api.x.com:8443").
  [[nodiscard]] Result<std::vector<DomainPattern>> domains(const toml::node& node, const std::string& where) const {
    return string_list<DomainPattern>(
        node, where, "[\"pypi.org\", \"*.pythonhosted.org\"]", "\"example.com\"",
        [&](const toml::node& item, const std::string& at, const std::string& text) -> Result<DomainPattern> {
          auto pattern = parse_domain_pattern(text);
          if (!pattern) return fail_at(item.source(), at + ": " + pattern.error().message(), "see docs/egress.md");
          return pattern;
        });
  }

  // Program arguments: any strings but NUL, which exec cannot pass.
  [[nodiscard]] Result<std::vector<std::string>> strings(const toml::node& node, const std::string& where) const {
    const auto* array = node.as_array();
    if (array == nullptr) {
      return fail_at(node.source(), where + " must be an array of strings, not " + std::string(type_name(node.type())),
                     "write args = [\"--flag\", \"value\"]");
    }
    std::vector<std::string> out;
    for (std::size_t i = 0; i < array->size(); ++i) {
      const toml::node& item = *array->get(i);
      const auto* s = item.as_string();
      if (s == nullptr || s->get().find('\0') != std::string::npos) {
        return fail_at(item.source(), where + "[" + std::to_string(i) + "] must be a string without NUL",
                       "quote each argument: \"value\"");
      }
      out.push_back(s->get());
    }
    return out;
  }

  [[nodiscard]] Result<std::uint64_t> positive(const toml::node& node, const std::string& where,
                                               std::int64_t max) const {
    const auto* integer = node.as_integer();
    if (integer == nullptr) {
      return fail_at(node.source(), where + " must be a positive integer, not " + std::string(type_name(node.type())),
                     "write a whole number without quotes, or remove the key for no limit");
    }
    const std::int64_t value = integer->get();
    if (value <= 0 || value > max) {
      return fail_at(node.source(), where + " is " + std::to_string(value) + ", outside 1-" + std::to_string(max),
                     "write a value in that range, or remove the key for no limit");
    }
    return static_cast<std::uint64_t>(value);
  }

  [[nodiscard]] Result<TwinLimits> limits(const toml::node& node, const std::string& where) const {
    TwinLimits out;
    const auto read = [&](const toml::table* t) -> Result<void> {
      auto known = known_keys(*t, limit_keys, "[" + where + "]");
      if (!known) return known;
      if (const auto* n = t->get("timeout_ms")) {
        const auto ms = positive(*n, where + ".timeout_ms", max_timeout.count());
        if (!ms) return error_of(ms);
        out.timeout = std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(*ms));
      }
      for (const auto& limit : count_limits) {
        const auto* n = t->get(limit.key);
        if (n == nullptr) continue;
        const auto value = positive(*n, where + "." + std::string(limit.key), limit.max);
        if (!value) return error_of(value);
        out.*limit.field = *value * limit.unit;
      }
      return {};
    };
    return table(node, where, "write [" + where + "] with the keys " + list(limit_keys))
        .and_then(read)
        .map([&] { return out; });
  }

  [[nodiscard]] Result<TwinGrants> twin(const toml::node& node, const std::string& where) const {
    TwinGrants out;
    const auto read = [&](const toml::table* t) {
      return known_keys(*t, twin_keys, "[" + where + "]")
          .and_then([&] {
            return read_key(*t, "allow", out.allow,
                            [&](const toml::node& n) { return names(n, where + ".allow", NameRule::grant); });
          })
          .and_then([&] {
            return read_key(*t, "deny", out.deny,
                            [&](const toml::node& n) { return names(n, where + ".deny", NameRule::refusal); });
          })
          .and_then([&] {
            return read_key(*t, "network", out.network,
                            [&](const toml::node& n) { return network(n, where + ".network"); });
          })
          .and_then([&] {
            return read_key(*t, "allow_domains", out.allow_domains,
                            [&](const toml::node& n) { return domains(n, where + ".allow_domains"); });
          })
          .and_then([&] {
            return read_key(*t, "deny_domains", out.deny_domains,
                            [&](const toml::node& n) { return domains(n, where + ".deny_domains"); });
          })
          .and_then([&]() -> Result<void> {
            if (const auto why = decide::why_not_network(out, where); !why.empty()) {
              return fail_at(node.source(), why, "see docs/egress.md");
            }
            return {};
          })
          .and_then([&] {
            return read_key(*t, "limits", out.limits,
                            [&](const toml::node& n) { return limits(n, where + ".limits"); });
          });
    };
    return table(node, where, "write [" + where + "] with the keys " + list(twin_keys))
        .and_then(read)
        .map([&] { return std::move(out); });
  }

  [[nodiscard]] Result<void> twins(const toml::node& node, PolicySpec& spec) const {
    const auto t = table(node, "twins", "write one [twins.<id>] table per twin");
    if (!t) return error_of(t);
    for (const auto& [key, value] : **t) {
      const std::string id(key.str());
      if (const auto why = why_not_twin_id(id); !why.empty()) {
        return fail_at(key.source(), "twin id '" + id + "' " + why,
                       "a twin id must be one path component: 1-" + std::to_string(max_twin_id_length) +
                           " bytes, no '/', control characters or surrounding spaces, not starting with '.' or '-'");
      }
      auto grants = twin(value, "twins." + id);
      if (!grants) return error_of(std::move(grants));
      spec.twins.emplace(id, std::move(*grants));
    }
    return {};
  }

  [[nodiscard]] Result<PolicySpec> policy(const toml::table& root) const {
    PolicySpec spec;
    return known_keys(root, top_keys, "the top-level table")
        .and_then([&] {
          return read_key(root, "safe_mode", spec.safe_mode,
                          [&](const toml::node& n) { return boolean(n, "safe_mode"); });
        })
        .and_then([&] {
          return read_key(root, "always_refused", spec.always_refused,
                          [&](const toml::node& n) { return names(n, "always_refused", NameRule::refusal); });
        })
        .and_then([&] {
          return read_key(root, "safe_mode_limits", spec.safe_mode_limits,
                          [&](const toml::node& n) { return limits(n, "safe_mode_limits"); });
        })
        .and_then([&]() -> Result<void> {
          const auto* n = root.get("twins");
          return n == nullptr ? Result<void>() : twins(*n, spec);
        })
        .map([&] { return std::move(spec); });
  }

  [[nodiscard]] Result<ToolEntry> tool(const toml::node& node, const std::string& where,
                                       const PolicySpec& spec) const {
    const auto t = table(node, where, "write [" + where + "] with program = \"/absolute/path\" and optional args");
    if (!t) return error_of(t);
    if (auto known = known_keys(**t, tool_keys, "[" + where + "]"); !known) return error_of(known);
    const auto* program_node = (*t)->get("program");
    if (program_node == nullptr) {
      return fail_at(node.source(), where + " has no program", "add program = \"/absolute/path/of/the/program\"");
    }
    const auto* program = program_node->as_string();
    if (program == nullptr || !why_not_program_path(program->get()).empty()) {
      const auto why = program == nullptr ? "must be a string, not " + std::string(type_name(program_node->type()))
                                          : "'" + program->get() + "' " + why_not_program_path(program->get());
      return fail_at(program_node->source(), where + ".program " + why,
                     "write the program's absolute path, e.g. program = \"/usr/bin/git\"");
    }
    const auto name = program_name(program->get());
    if (std::find_if(spec.always_refused.begin(), spec.always_refused.end(),
                     [&](const std::string& r) { return program_name(r) == name; }) != spec.always_refused.end()) {
      return fail_at(program_node->source(), where + ".program '" + program->get() + "' is always refused",
                     "remove this tool, or remove '" + std::string(name) + "' from always_refused");
    }
    ToolEntry entry{.kind = ToolKind::program, .program = program->get()};
    return read_key(**t, "args", entry.args, [&](const toml::node& n) { return strings(n, where + ".args"); })
        .map([&] { return std::move(entry); });
  }

  [[nodiscard]] Result<ToolCatalog> catalog(const toml::table& root, const PolicySpec& spec) const {
    ToolCatalog out = ToolCatalog::seed_default();
    const auto* node = root.get("tools");
    if (node == nullptr) return out;
    const auto t = table(*node, "tools", "write one [tools.<name>] table per tool");
    if (!t) return error_of(t);
    for (const auto& [key, value] : **t) {
      const std::string name(key.str());
      if (const auto why = why_not_tool_key(name); !why.empty()) {
        return fail_at(key.source(), "tool name '" + name + "' " + why,
                       "name the tool like the requests do, e.g. [tools.git_status]");
      }
      if (const auto* builtin = out.find(name); builtin != nullptr && builtin->kind != ToolKind::unavailable) {
        return fail_at(key.source(), "tool '" + name + "' is built in and cannot be redefined",
                       "choose another name for this tool");
      }
      auto entry = tool(value, "tools." + name, spec);
      if (!entry) return error_of(std::move(entry));
      out.tools.insert_or_assign(name, std::move(*entry));
    }
    return out;
  }

 private:
  std::string_view source_;
};

[[nodiscard]] inline Result<toml::table> parse_toml(std::string_view text, std::string_view source,
                                                    const Reader& reader) {
  try {
    return toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    return reader.fail_at(e.source(), "invalid TOML: " + std::string(e.description()),
                          "fix the syntax (TOML 1.0; see docs/policy.md and examples/policy.toml)");
  }
}

}  // namespace pagi_exec::detail::policy_toml

namespace pagi_exec {

inline Result<PolicyFile> parse_policy(std::string_view text, std::string_view source_name) {
  const detail::policy_toml::Reader reader(source_name);
  const auto root = detail::policy_toml::parse_toml(text, source_name, reader);
  if (!root) return error_of(root);
  auto spec = reader.policy(*root);
  if (!spec) return error_of(std::move(spec));
  auto catalog = reader.catalog(*root, *spec);
  if (!catalog) return error_of(std::move(catalog));
  spec->revision = detail::revision_of(text);
  return Policy::make(std::move(*spec))
      .map_error(add_context(std::string(source_name) + ": "))
      .map([&](Policy policy) { return PolicyFile{.policy = std::move(policy), .catalog = std::move(*catalog)}; });
}

inline Result<PolicyFile> load_policy_file(const std::filesystem::path& path) {
  const std::string name = path.string();
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return fail(Errc::invalid_config, "cannot read policy file " + name, ec.value());
  if (size > max_policy_file_bytes) {
    return fail(Errc::invalid_config, name + ": the policy file is larger than " +
                                          std::to_string(max_policy_file_bytes) + " bytes; is it the right file?");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(Errc::invalid_config, "cannot open policy file " + name, errno);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return fail(Errc::invalid_config, "cannot read policy file " + name, errno);
  return parse_policy(text, name);
}

}  // namespace pagi_exec
