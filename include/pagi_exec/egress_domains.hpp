// SPDX-License-Identifier: Apache-2.0
// The domains an egress twin may reach: the patterns a policy's allow_domains and deny_domains
// hold, how they are read and how a requested host and port are matched against them. Shared by
// the policy file reader (which rejects a bad pattern with its place) and the egress proxy.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pagi_exec/error.hpp"

namespace pagi_exec {

/// Ports an egress pattern without ":port" allows: HTTP and HTTPS.
inline constexpr std::uint16_t egress_default_ports[] = {80, 443};

/// One entry of allow_domains or deny_domains: "pypi.org", "*.pythonhosted.org",
/// "api.example.com:8443". A name matches itself only; "*.suffix" matches every name below the
/// suffix (not the suffix itself); an IP literal ("192.0.2.7") matches that literal only. Without a
/// port an allow pattern covers ports 80 and 443, a deny pattern every port.
struct DomainPattern {
  std::string name{};                ///< lower case, no trailing dot; the suffix for a wildcard
  bool wildcard = false;             ///< "*." + name
  std::optional<std::uint16_t> port{};  ///< nullopt: egress_default_ports

  /// As written in a policy: "*.example.com:8443".
  [[nodiscard]] std::string text() const {
    std::string out = wildcard ? "*." + name : name;
    if (port) out += ":" + std::to_string(*port);
    return out;
  }
  bool operator==(const DomainPattern&) const = default;
};

namespace detail::egress {

inline char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// A DNS name as written in a URL's host: labels of letters, digits, '-' and '_' (seen in real
// names), 1-63 bytes each, 253 in all; or a dotted IPv4 literal, which has the same alphabet.
inline bool valid_host_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 253) return false;
  std::size_t label = 0;
  for (const char c : name) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok || ++label > 63) return false;
  }
  return label > 0;
}

}  // namespace detail::egress

/// A host as the proxy compares it: lower case, one trailing dot removed. Empty when `host` is not
/// a valid name or IPv4 literal (IPv6 literals are never matched by a pattern).
[[nodiscard]] inline std::string normalize_egress_host(std::string_view host) {
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  std::string out(host.size(), '\0');
  std::transform(host.begin(), host.end(), out.begin(), detail::egress::lower);
  return detail::egress::valid_host_name(out) ? out : std::string{};
}

/// Reads one pattern as a policy writes it. Errc::invalid_config naming what is wrong and what to
/// write instead.
[[nodiscard]] inline Result<DomainPattern> parse_domain_pattern(std::string_view text) {
  const std::string quoted = "\"" + std::string(text) + "\"";
  DomainPattern out;
  std::string_view rest = text;
  if (rest.find('/') != std::string_view::npos) {
    return fail(Errc::invalid_config, "domain " + quoted + ": write a host name, not a URL (\"pypi.org\", not "
                                      "\"https://pypi.org/simple\")");
  }
  if (rest.starts_with('[') || std::count(rest.begin(), rest.end(), ':') > 1) {
    return fail(Errc::invalid_config, "domain " + quoted + ": IPv6 literals are not supported; name the host, or "
                                      "an IPv4 address");
  }
  if (const auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    const std::string_view digits = rest.substr(colon + 1);
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() || value == 0 || value > 65535) {
      return fail(Errc::invalid_config, "domain " + quoted + ": the port after ':' must be a number from 1 to 65535 "
                                        "(write \"name\" for ports 80 and 443, or \"name:8443\")");
    }
    out.port = static_cast<std::uint16_t>(value);
    rest = rest.substr(0, colon);
  }
  if (rest.starts_with("*.")) {
    out.wildcard = true;
    rest.remove_prefix(2);
  }
  if (rest.find('*') != std::string_view::npos) {
    return fail(Errc::invalid_config, "domain " + quoted + ": '*' may only open a pattern, as in \"*.example.com\"");
  }
  out.name = normalize_egress_host(rest);
  if (out.name.empty()) {
    return fail(Errc::invalid_config, "domain " + quoted + ": not a host name (letters, digits, '-', '_' and dots; "
                                      "an IPv4 literal; IPv6 literals are not supported)");
  }
  if (out.wildcard && out.name.find('.') == std::string::npos) {
    return fail(Errc::invalid_config, "domain " + quoted + ": a wildcard needs a suffix with a dot (\"*.example.com\"); "
                                      "\"*." + out.name + "\" would match a whole top-level domain");
  }
  return out;
}

/// Which ports a pattern without ":port" covers: in allow_domains the web's (80 and 443); in
/// deny_domains every port, since denying a name means denying the name.
enum class UnsetPort : std::uint8_t { web_ports, any_port };

/// Whether `pattern` covers `host` (already normalized) on `port`.
[[nodiscard]] inline bool matches(const DomainPattern& pattern, std::string_view host, std::uint16_t port,
                                  UnsetPort unset = UnsetPort::web_ports) noexcept {
  const bool port_ok = pattern.port ? *pattern.port == port
                       : unset == UnsetPort::any_port
                           ? true
                           : std::find(std::begin(egress_default_ports), std::end(egress_default_ports), port) !=
                                 std::end(egress_default_ports);
  if (!port_ok) return false;
  if (!pattern.wildcard) return host == pattern.name;
  return host.size() > pattern.name.size() + 1 && host.ends_with(pattern.name) &&
         host[host.size() - pattern.name.size() - 1] == '.';
}

/// The first pattern of `patterns` that covers `host` on `port`, if any.
[[nodiscard]] inline const DomainPattern* first_match(const std::vector<DomainPattern>& patterns, std::string_view host,
                                                      std::uint16_t port,
                                                      UnsetPort unset = UnsetPort::web_ports) noexcept {
  const auto it = std::find_if(patterns.begin(), patterns.end(),
                               [&](const DomainPattern& p) { return matches(p, host, port, unset); });
  return it == patterns.end() ? nullptr : &*it;
}

}  // namespace pagi_exec
