// SPDX-License-Identifier: Apache-2.0
// decode(): the raw bytes of an ExecutionRequest, parsed as wire.proto and checked field by field.
#include "request_decoder.hpp"

#include <cstdint>
#include <vector>

#include "wire.pb.h"

// Why the server reads these bytes itself: grpc++ parses a request before the handler runs, and
// a proto3 `string` with invalid UTF-8 (or bytes that are no protobuf at all) fails that parse;
// protobuf then logs "[libprotobuf ERROR ...]" on stderr and grpc++ answers INTERNAL with an empty
// message, which tells the caller nothing and looks like a crash of ours. Parsed as wire.proto
// (every string as bytes) the request reaches us whole, and the answer can say which field is
// wrong. The methods that take an ExecutionRequest are registered raw (see service.cpp).

namespace tools_server::codec {
namespace {

grpc::Status invalid(std::string why) { return {grpc::StatusCode::INVALID_ARGUMENT, std::move(why)}; }

// INVALID_ARGUMENT naming `field` when `text` is not valid UTF-8.
grpc::Status check_utf8(const std::string& field, std::string_view text) {
  const auto at = invalid_utf8_at(text);
  if (at == std::string_view::npos) return grpc::Status::OK;
  static constexpr char hex[] = "0123456789abcdef";
  const auto byte = static_cast<unsigned char>(text[at]);
  return invalid(field + " is not valid UTF-8 (byte 0x" + hex[byte >> 4] + hex[byte & 0xf] + " at offset " +
                 std::to_string(at) + "): tools.proto declares it a string; send text (encode binary data, e.g. "
                 "as base64)");
}

// `bytes` parsed as `message` (the wire.proto twin of `name`).
grpc::Status parse(const grpc::ByteBuffer& bytes, const char* name, google::protobuf::Message& message) {
  std::vector<grpc::Slice> slices;
  if (!bytes.Dump(&slices).ok()) return invalid("the request could not be read");
  std::string data;
  data.reserve(bytes.Length());
  for (const auto& slice : slices) data.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  if (!message.ParseFromString(data)) {
    return invalid(std::string("the request is not a valid ") + name + ": its " + std::to_string(data.size()) +
                   " bytes are not a protobuf message of that shape");
  }
  return grpc::Status::OK;
}

grpc::Status check_fields(const wire::ExecutionRequest& message) {
  const std::pair<const char*, const std::string*> fields[] = {{"command", &message.command()},
                                                               {"twin_id", &message.twin_id()},
                                                               {"job_id", &message.job_id()},
                                                               {"namespace", &message.namespace_()}};
  for (const auto& [name, text] : fields) {
    if (auto status = check_utf8(name, *text); !status.ok()) return status;
  }
  for (int i = 0; i < message.args_size(); ++i) {
    if (auto status = check_utf8("args[" + std::to_string(i) + "]", message.args(i)); !status.ok()) return status;
  }
  for (int i = 0; i < message.metadata_size(); ++i) {
    const auto& entry = message.metadata(i);
    if (auto status = check_utf8("metadata key #" + std::to_string(i), entry.key()); !status.ok()) return status;
    if (auto status = check_utf8("metadata['" + entry.key() + "']", entry.value()); !status.ok()) return status;
  }
  return grpc::Status::OK;
}

}  // namespace

std::size_t invalid_utf8_at(std::string_view text) noexcept {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    if (lead < 0x80) {
      ++i;
      continue;
    }
    std::size_t length = 0;
    std::uint32_t code = 0;
    if (lead >= 0xc2 && lead <= 0xdf) {
      length = 2, code = lead & 0x1fU;
    } else if (lead >= 0xe0 && lead <= 0xef) {
      length = 3, code = lead & 0x0fU;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      length = 4, code = lead & 0x07U;
    } else {
      return i;  // a continuation byte, or a lead byte no valid sequence starts with
    }
    if (text.size() - i < length) return i;
    for (std::size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xc0U) != 0x80U) return i;
      code = (code << 6U) | (next & 0x3fU);
    }
    const bool overlong = (length == 3 && code < 0x800) || (length == 4 && code < 0x10000);
    if (overlong || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return i;
    i += length;
  }
  return std::string_view::npos;
}

grpc::Status decode(const grpc::ByteBuffer& bytes, pagi_exec::Request& request) {
  wire::ExecutionRequest message;
  if (auto parsed = parse(bytes, "tools.ExecutionRequest", message); !parsed.ok()) return parsed;
  if (auto status = check_fields(message); !status.ok()) return status;
  request = pagi_exec::Request{
      .tool = message.command(),
      .args = {message.args().begin(), message.args().end()},
      .twin_id = message.twin_id(),
      .job_id = message.job_id(),
      .ns = message.namespace_(),
      .metadata = {},
      .timeout_cap = std::nullopt,
      .authenticated_twin = std::nullopt,
  };
  for (const auto& entry : message.metadata()) {
    // Only the server says who a caller proved to be (see Authenticator::bind). A repeated key:
    // the last value wins, as protobuf's map parsing has it.
    if (entry.key() != reserved_metadata_key) request.metadata.insert_or_assign(entry.key(), entry.value());
  }
  return grpc::Status::OK;
}

grpc::Status decode(const grpc::ByteBuffer& bytes, tools::ListExecutionsRequest& request) {
  wire::ListExecutionsRequest message;
  if (auto parsed = parse(bytes, "tools.ListExecutionsRequest", message); !parsed.ok()) return parsed;
  const std::pair<const char*, const std::string*> fields[] = {{"twin_id", &message.twin_id()},
                                                               {"job_id", &message.job_id()},
                                                               {"outcome", &message.outcome()},
                                                               {"page_token", &message.page_token()}};
  for (const auto& [name, text] : fields) {
    if (auto status = check_utf8(name, *text); !status.ok()) return status;
  }
  request.set_twin_id(message.twin_id());
  request.set_job_id(message.job_id());
  request.set_outcome(message.outcome());
  request.set_page_size(message.page_size());
  request.set_page_token(message.page_token());
  return grpc::Status::OK;
}

grpc::Status decode(const grpc::ByteBuffer& bytes, tools::GetExecutionRequest& request) {
  wire::GetExecutionRequest message;
  if (auto parsed = parse(bytes, "tools.GetExecutionRequest", message); !parsed.ok()) return parsed;
  if (auto status = check_utf8("execution_id", message.execution_id()); !status.ok()) return status;
  request.set_execution_id(message.execution_id());
  return grpc::Status::OK;
}

}  // namespace tools_server::codec
