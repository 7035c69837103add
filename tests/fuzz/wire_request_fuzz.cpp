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

// The request matches what the generated tools.ExecutionRequest parser read (metadata: without
// the reserved key, which the decoder drops).
void check_same_fields(const tools::ExecutionRequest& message, const pagi_exec::Request& request) {
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

// Every string of an accepted request is valid UTF-8, as tools.proto's `string` requires.
void check_utf8(const pagi_exec::Request& request) {
  const auto valid = [](const std::string& text) {
    return tools_server::codec::invalid_utf8_at(text) == std::string_view::npos;
  };
  bool all = valid(request.tool) && valid(request.twin_id) && valid(request.job_id) && valid(request.ns);
  for (const auto& arg : request.args) all = all && valid(arg);
  for (const auto& [key, value] : request.metadata) all = all && valid(key) && valid(value);
  fuzz::check(all, "an accepted request holds only valid UTF-8");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(fuzz::as_text(data, size));
  grpc::Slice slice(bytes);
  const grpc::ByteBuffer buffer(&slice, 1);

  pagi_exec::Request request;
  const auto status = tools_server::codec::decode(buffer, request);
  // Bytes the generated parser reads, the decoder reads the same. (Not the converse: the decoder
  // checks the last value of a field repeated on the wire, which is the one kept, while the
  // generated parser also refuses an invalid earlier one it then overwrites.)
  tools::ExecutionRequest message;
  const bool generated_accepts = message.ParseFromString(bytes);
  fuzz::check(!generated_accepts || status.ok(), "bytes the generated parser accepts, the decoder accepts");
  if (!status.ok()) {
    fuzz::check(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT, "bad bytes are INVALID_ARGUMENT");
    fuzz::check(!status.error_message().empty(), "a refused payload is told why");
    return 0;
  }
  fuzz::check(!request.authenticated_twin && !request.timeout_cap, "the wire never sets what only the server knows");
  fuzz::check(!request.metadata.contains(std::string(tools_server::codec::reserved_metadata_key)),
              "the reserved metadata key never passes");
  check_utf8(request);
  if (generated_accepts) check_same_fields(message, request);

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
