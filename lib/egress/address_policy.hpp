// SPDX-License-Identifier: Apache-2.0
// Which addresses the egress proxy may connect to. An allowed name can resolve anywhere (DNS
// rebinding, a typo, a hostile record), so the proxy checks the address it is about to connect
// to, not the name: loopback, private, link-local, multicast and reserved ranges and this host's
// own addresses are refused unless the operator opened a range on purpose.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pagi_exec/error.hpp"

namespace pagi_exec::egress {

/// An address as bytes: 4 for IPv4, 16 for IPv6 (IPv4-mapped IPv6 addresses are stored as IPv4).
struct Address {
  std::array<unsigned char, 16> bytes{};
  std::size_t size = 0;  ///< 4 or 16; 0: not an address
  [[nodiscard]] std::string text() const;
  bool operator==(const Address&) const = default;
};

/// Reads "192.0.2.7" or "2001:db8::1"; nullopt for anything else.
[[nodiscard]] std::optional<Address> parse_address(std::string_view text) noexcept;

/// A CIDR range: "10.0.0.0/8".
struct AddressRange {
  Address first{};
  unsigned prefix = 0;
  [[nodiscard]] bool contains(const Address& address) const noexcept;
  [[nodiscard]] std::string text() const;
};

/// Reads a range as check_egress_range() accepts it. Errc::invalid_config otherwise.
[[nodiscard]] Result<AddressRange> parse_range(std::string_view cidr);

/// The ranges refused by default: loopback, "this network", private (RFC 1918, shared CGNAT,
/// IPv6 unique local), link-local, multicast, broadcast and reserved, benchmarking, IETF protocol
/// assignments, and the IPv6 unspecified, loopback, discard and site-local blocks.
[[nodiscard]] const std::vector<AddressRange>& blocked_ranges();

class AddressPolicy {
 public:
  /// `opened`: the operator's TOOLS_EGRESS_ALLOW_RANGES. Errc::invalid_config for a bad one.
  [[nodiscard]] static Result<AddressPolicy> make(const std::vector<std::string>& opened);

  /// Why the proxy must not connect to `address`: the refused range ("127.0.0.0/8") or
  /// "this host's 198.51.100.1"; nullopt when it may. The host's own addresses are read afresh
  /// each time (interfaces come and go while the server runs).
  [[nodiscard]] std::optional<std::string> why_blocked(const Address& address) const;

 private:
  std::vector<AddressRange> opened_;
};

}  // namespace pagi_exec::egress
