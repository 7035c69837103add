// SPDX-License-Identifier: Apache-2.0
#include "egress/address_policy.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <memory>

#include "pagi_exec/egress.hpp"

namespace pagi_exec::egress {
namespace {

constexpr std::array<unsigned char, 12> v4_mapped_prefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

Address v4(const unsigned char* four) {
  Address out;
  std::copy(four, four + 4, out.bytes.begin());
  out.size = 4;
  return out;
}

// IPv4-mapped IPv6 (::ffff:a.b.c.d) reaches the IPv4 address: compare it as one.
Address canonical(Address address) {
  if (address.size == 16 && std::equal(v4_mapped_prefix.begin(), v4_mapped_prefix.end(), address.bytes.begin())) {
    return v4(address.bytes.data() + 12);
  }
  return address;
}

// IPv6 forms that carry an IPv4 address a gateway would connect to: NAT64 (64:ff9b::/96) and
// 6to4 (2002::/16). The embedded address gets the same checks.
std::optional<Address> embedded_v4(const Address& address) {
  if (address.size != 16) return std::nullopt;
  const auto& b = address.bytes;
  constexpr std::array<unsigned char, 12> nat64 = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  if (std::equal(nat64.begin(), nat64.end(), b.begin())) return v4(b.data() + 12);
  if (b[0] == 0x20 && b[1] == 0x02) return v4(b.data() + 2);
  return std::nullopt;
}

AddressRange must_parse(std::string_view cidr) {
  auto range = parse_range(cidr);
  return range ? *range : AddressRange{};
}

}  // namespace

std::string Address::text() const {
  char buffer[INET6_ADDRSTRLEN] = {};
  if (size == 0 || ::inet_ntop(size == 4 ? AF_INET : AF_INET6, bytes.data(), buffer, sizeof buffer) == nullptr) return {};
  return buffer;
}

std::optional<Address> parse_address(std::string_view text) noexcept {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  char buffer[INET6_ADDRSTRLEN] = {};
  text.copy(buffer, text.size());
  Address out;
  if (::inet_pton(AF_INET, buffer, out.bytes.data()) == 1) {
    out.size = 4;
  } else if (::inet_pton(AF_INET6, buffer, out.bytes.data()) == 1) {
    out.size = 16;
  } else {
    return std::nullopt;
  }
  return canonical(out);
}

bool AddressRange::contains(const Address& address) const noexcept {
  if (address.size != first.size) return false;
  for (unsigned bit = 0; bit < prefix; ++bit) {
    const unsigned mask = 0x80U >> (bit % 8);
    if ((address.bytes[bit / 8] & mask) != (first.bytes[bit / 8] & mask)) return false;
  }
  return true;
}

std::string AddressRange::text() const { return first.text() + "/" + std::to_string(prefix); }

Result<AddressRange> parse_range(std::string_view cidr) {
  if (auto checked = check_egress_range(cidr); !checked) return error_of(checked);
  const auto slash = cidr.find('/');
  AddressRange out;
  // Not canonical(): "::ffff:0:0/96" is a range of IPv6 spellings, compared as such.
  Address first;
  std::string text(cidr.substr(0, slash));
  first.size = ::inet_pton(AF_INET, text.c_str(), first.bytes.data()) == 1 ? 4 : 16;
  if (first.size == 16) (void)::inet_pton(AF_INET6, text.c_str(), first.bytes.data());
  out.first = first;
  const std::string_view digits = cidr.substr(slash + 1);
  (void)std::from_chars(digits.data(), digits.data() + digits.size(), out.prefix);
  return out;
}

const std::vector<AddressRange>& blocked_ranges() {
  static const std::vector<AddressRange> ranges = [] {
    std::vector<AddressRange> out;
    for (const char* cidr : {
             "0.0.0.0/8",       // "this network"
             "10.0.0.0/8",      // private
             "100.64.0.0/10",   // shared address space (carrier-grade NAT)
             "127.0.0.0/8",     // loopback
             "169.254.0.0/16",  // link-local (cloud metadata services live here)
             "172.16.0.0/12",   // private
             "192.0.0.0/24",    // IETF protocol assignments
             "192.168.0.0/16",  // private
             "198.18.0.0/15",   // benchmarking
             "224.0.0.0/4",     // multicast
             "240.0.0.0/4",     // reserved, and the broadcast address
             "::/96",           // unspecified, loopback and the deprecated IPv4-compatible form
             "100::/64",        // discard
             "2001::/32",       // Teredo: an IPv4 address hidden in the bits
             "fc00::/7",        // unique local
             "fe80::/10",       // link-local
             "fec0::/10",       // site-local (deprecated)
             "ff00::/8",        // multicast
         }) {
      out.push_back(must_parse(cidr));
    }
    return out;
  }();
  return ranges;
}

Result<AddressPolicy> AddressPolicy::make(const std::vector<std::string>& opened) {
  AddressPolicy out;
  for (const auto& cidr : opened) {
    auto range = parse_range(cidr);
    if (!range) return fail(Errc::invalid_config, "TOOLS_EGRESS_ALLOW_RANGES: " + range.error().message());
    out.opened_.push_back(*range);
  }
  return out;
}

std::optional<std::string> AddressPolicy::why_blocked(const Address& asked) const {
  const Address address = canonical(asked);
  if (address.size != 4 && address.size != 16) return "not an address";
  const auto opened = [&](const Address& a) {
    return std::any_of(opened_.begin(), opened_.end(), [&](const AddressRange& r) { return r.contains(a); });
  };
  if (opened(address)) return std::nullopt;
  for (const auto& range : blocked_ranges()) {
    if (range.contains(address)) return range.text();
  }
  if (const auto inner = embedded_v4(address)) {
    if (auto why = why_blocked(*inner)) return *why + " (inside " + address.text() + ")";
  }
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return "this host's addresses could not be read";  // refuse rather than guess
  const std::unique_ptr<ifaddrs, decltype(&::freeifaddrs)> owned(list, &::freeifaddrs);
  for (const ifaddrs* entry = list; entry != nullptr; entry = entry->ifa_next) {
    if (entry->ifa_addr == nullptr) continue;
    Address own;
    if (entry->ifa_addr->sa_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(entry->ifa_addr);
      std::memcpy(own.bytes.data(), &in->sin_addr, 4);
      own.size = 4;
    } else if (entry->ifa_addr->sa_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(entry->ifa_addr);
      std::memcpy(own.bytes.data(), &in6->sin6_addr, 16);
      own.size = 16;
    } else {
      continue;
    }
    if (own == address) return "this host's " + address.text();
  }
  return std::nullopt;
}

}  // namespace pagi_exec::egress
