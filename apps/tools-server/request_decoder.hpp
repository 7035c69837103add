// SPDX-License-Identifier: Apache-2.0
// An ExecutionRequest read from the raw bytes of a call: bytes the server cannot parse are
// INVALID_ARGUMENT naming the field, not grpc++'s INTERNAL with an empty message.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/status.h>

#include <pagi_exec/pagi_exec.hpp>

#include "tools.pb.h"

namespace tools_server::codec {

/// The metadata key through which earlier servers told the audit log which twin a caller proved
/// (now Request::authenticated_twin). A client sending it is dropped, as before, so that it can
/// never pass for the server's proof, nor count towards the request's size.
inline constexpr std::string_view reserved_metadata_key = "pagi-exec.authenticated-twin";

/// `bytes` (a tools.ExecutionRequest on the wire) as a library Request, field for field
/// (metadata: the last value of a key wins, as in a protobuf map; reserved_metadata_key is
/// dropped; authenticated_twin stays unset: only the server says who a caller proved to be).
/// INVALID_ARGUMENT when `bytes` are not a protobuf message of that shape, or when a field
/// tools.proto declares `string` holds invalid UTF-8, with a message naming the field
/// ("args[2] is not valid UTF-8 (byte 0xff at offset 5) ..."). Thread-safe.
[[nodiscard]] grpc::Status decode(const grpc::ByteBuffer& bytes, pagi_exec::Request& request);

/// `bytes` (a tools.ListExecutionsRequest / tools.GetExecutionRequest on the wire) as that
/// message, with the same INVALID_ARGUMENT answers as decode() above. Thread-safe.
[[nodiscard]] grpc::Status decode(const grpc::ByteBuffer& bytes, tools::ListExecutionsRequest& request);
[[nodiscard]] grpc::Status decode(const grpc::ByteBuffer& bytes, tools::GetExecutionRequest& request);

/// Offset of the first byte at which `text` stops being valid UTF-8 (no overlong forms, no
/// surrogates, nothing above U+10FFFF, as protobuf checks a `string`), or npos. Allocation-free.
[[nodiscard]] std::size_t invalid_utf8_at(std::string_view text) noexcept;

}  // namespace tools_server::codec
