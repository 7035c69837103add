// SPDX-License-Identifier: Apache-2.0
// The checks of the operator's egress settings (egress.hpp), shared by the server's settings
// reader and the proxy.
#include <arpa/inet.h>

#include <array>
#include <charconv>
#include <string>

#include "pagi_exec/egress.hpp"

namespace pagi_exec {
namespace {

// The address's bytes and their count (4 or 16); 0 when `text` is no address literal.
std::size_t address_bytes(std::string_view text, std::array<unsigned char, 16>& out) noexcept {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return 0;
  char buffer[INET6_ADDRSTRLEN] = {};
  text.copy(buffer, text.size());
  if (::inet_pton(AF_INET, buffer, out.data()) == 1) return 4;
  if (::inet_pton(AF_INET6, buffer, out.data()) == 1) return 16;
  return 0;
}

}  // namespace

bool is_ip_literal(std::string_view text) noexcept {
  std::array<unsigned char, 16> bytes{};
  return address_bytes(text, bytes) != 0;
}

Result<void> check_egress_range(std::string_view cidr) {
  const std::string quoted = "'" + std::string(cidr) + "'";
  const auto slash = cidr.find('/');
  std::array<unsigned char, 16> bytes{};
  const std::size_t size = address_bytes(cidr.substr(0, slash), bytes);
  if (slash == std::string_view::npos || size == 0) {
    return fail(Errc::invalid_config, "range " + quoted + " is not ADDRESS/PREFIX (e.g. 10.20.0.0/16 or fd00::/8)");
  }
  const std::string_view digits = cidr.substr(slash + 1);
  unsigned prefix = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
  if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() || prefix > size * 8) {
    return fail(Errc::invalid_config, "range " + quoted + ": the prefix length must be 0-" + std::to_string(size * 8));
  }
  for (std::size_t bit = prefix; bit < size * 8; ++bit) {
    if ((static_cast<unsigned>(bytes[bit / 8]) >> (7 - bit % 8)) & 1U) {
      return fail(Errc::invalid_config, "range " + quoted + " has address bits set past its /" + std::to_string(prefix) +
                                            " prefix: write the range's first address");
    }
  }
  return {};
}

}  // namespace pagi_exec
