// SPDX-License-Identifier: Apache-2.0
// SHA-256 through OpenSSL's libcrypto, for the audit log's hash chain and argv digests.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace pagi_exec::detail {

/// The lower-case hex SHA-256 of `bytes` (64 characters).
[[nodiscard]] std::string sha256_hex(std::string_view bytes);

/// The lower-case hex SHA-256 of `parts` each prefixed by its length (8 bytes, little-endian):
/// an exact digest of a list of byte strings (["a", "bc"] and ["ab", "c"] differ; NUL bytes and
/// invalid UTF-8 are digested as they are).
[[nodiscard]] std::string sha256_hex_of_parts(std::span<const std::string_view> parts);

/// 64 zeros: the link of a chain's first record.
inline const std::string chain_origin(64, '0');

}  // namespace pagi_exec::detail
