// SPDX-License-Identifier: Apache-2.0
// Raw request bytes as the server receives them, for the adapter's unit tests.
#pragma once

#include <string>

#include <grpcpp/support/byte_buffer.h>

namespace test_support {

/// `data` in a grpc::ByteBuffer, as a call's payload reaches a raw handler.
inline grpc::ByteBuffer bytes_of(const std::string& data) {
  grpc::Slice slice(data);
  return grpc::ByteBuffer(&slice, 1);
}

}  // namespace test_support
