// SPDX-License-Identifier: Apache-2.0
// Fuzz target: the server's proto-to-library mapping. Any bytes as the payload of an
// ExecutionRequest call go through codec::decode (wire.proto, strings checked as UTF-8), the
// request it yields is judged by the seed policy, and a refusal is encoded for the wire.
#include <cstddef>
#include <cstdint>
#include <string>

#include <google/protobuf/stubs/logging.h>
#include <grpcpp/support/byte_buffer.h>

#include "codec.hpp"
#include "fuzz_input.hpp"
#include "request_decoder.hpp"
#include "tools.pb.h"

namespace {

// Protobuf logs every failed UTF-8 check of the generated parser; a fuzzer would print millions.
[[maybe_unused]] const bool quiet = [] {
  google::protobuf::SetLogHandler(nullptr);
  return true;
}();

// What the decoder accepted is exactly what the generated tools.ExecutionRequest parser reads
// from the same bytes: the two agree on which bytes are a request and on every field.
void check_same_as_generated(const std::string& bytes, const pagi_exec::Request& request) {
  tools::ExecutionRequest message;
  fuzz::check(message.ParseFromString(bytes), "bytes the decoder accepts, the generated parser accepts");
  fuzz::check(message.command() == request.tool && message.twin_id() == request.twin_id &&
                  message.job_id() == request.job_id && message.namespace_() == request.ns,
              "the scalar fields match the generated parser's");
  fuzz::check(std::equal(message.args().begin(), message.args().end(), request.args.begin(), request.args.end()),
              "args match the generated parser's");
  auto metadata = message.metadata();
  metadata.erase(std::string(tools_server::codec::reserved_metadata_key));
  fuzz::check(metadata.size() == request.metadata.size(), "metadata has the generated parser's keys");
  for (const auto& [key, value] : request.metadata) {
    const auto found = metadata.find(key);
    fuzz::check(found != metadata.end() && found->second == value, "metadata matches the generated parser's");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(fuzz::as_text(data, size));
  grpc::Slice slice(bytes);
  const grpc::ByteBuffer buffer(&slice, 1);

  pagi_exec::Request request;
  const auto status = tools_server::codec::decode(buffer, request);
  if (!status.ok()) {
    fuzz::check(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT, "bad bytes are INVALID_ARGUMENT");
    fuzz::check(!status.error_message().empty(), "a refused payload is told why");
    return 0;
  }
  fuzz::check(!request.authenticated_twin && !request.timeout_cap, "the wire never sets what only the server knows");
  fuzz::check(!request.metadata.contains(std::string(tools_server::codec::reserved_metadata_key)),
              "the reserved metadata key never passes");
  check_same_as_generated(bytes, request);

  const auto catalog = pagi_exec::ToolCatalog::seed_default();
  const pagi_exec::Outcome outcome{.decision = pagi_exec::judge(pagi_exec::Policy::seed_default(), catalog, {}, request)};
  if (outcome.decision.allowed) return 0;  // nothing ran: only a refusal has an answer without a run
  tools::ExecutionResponse response;
  const auto answer = tools_server::codec::to_proto(outcome, tools_server::codec::StopCause::none, response);
  fuzz::check(answer.ok() && !response.success(), "a refusal is an OK status with success=false");
  tools::ExecutionResponse reread;
  fuzz::check(reread.ParseFromString(response.SerializeAsString()), "the answer is a valid ExecutionResponse");
  return 0;
}
