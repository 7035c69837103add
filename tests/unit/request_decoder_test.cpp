// SPDX-License-Identifier: Apache-2.0
// Unit: the server reads an ExecutionRequest from its raw bytes (wire.proto): the mirror agrees
// with tools.proto field for field, invalid UTF-8 is found where protobuf would refuse it, and a
// valid request decodes to exactly the Request its fields say.
#include <doctest/doctest.h>

#include <google/protobuf/descriptor.h>

#include "request_decoder.hpp"
#include "grpc_bytes.hpp"
#include "tools.pb.h"
#include "wire.pb.h"

using tools_server::codec::decode;
using tools_server::codec::invalid_utf8_at;

TEST_SUITE("request_decoder") {
  TEST_CASE("wire.proto reads every field of tools.ExecutionRequest, with bytes for each string") {
    using google::protobuf::FieldDescriptor;
    const auto* original = tools::ExecutionRequest::descriptor();
    const auto* mirror = tools_server::wire::ExecutionRequest::descriptor();
    REQUIRE(original->field_count() == mirror->field_count());
    for (int i = 0; i < original->field_count(); ++i) {
      const auto* field = original->field(i);
      CAPTURE(field->name());
      const auto* twin = mirror->FindFieldByNumber(field->number());
      REQUIRE(twin != nullptr);
      CHECK(twin->name() == field->name());
      CHECK(twin->is_repeated() == field->is_repeated());
      if (field->is_map()) {  // map<string, string>: entries of key = 1, value = 2
        REQUIRE(twin->type() == FieldDescriptor::TYPE_MESSAGE);
        const auto* entry = twin->message_type();
        CHECK(entry->FindFieldByNumber(1)->type() == FieldDescriptor::TYPE_BYTES);
        CHECK(entry->FindFieldByNumber(2)->type() == FieldDescriptor::TYPE_BYTES);
      } else {
        CHECK(field->type() == FieldDescriptor::TYPE_STRING);
        CHECK(twin->type() == FieldDescriptor::TYPE_BYTES);
      }
    }
  }

  TEST_CASE("invalid UTF-8 is found at its first bad byte; valid text of every length passes") {
    struct Row {
      std::string text;
      std::size_t at;
    };
    const auto npos = std::string_view::npos;
    const Row rows[] = {
        {"", npos},
        {"plain ascii", npos},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", npos},  // 2, 3 and 4-byte sequences
        {"\xef\xbf\xbf\xf4\x8f\xbf\xbf", npos},               // U+FFFF, U+10FFFF
        {"ab\xff", 2},                                        // never in UTF-8
        {"\x80", 0},                                          // a lone continuation byte
        {"x\xc3", 1},                                         // cut short
        {"\xc0\xaf", 0},                                      // overlong '/'
        {"\xe0\x80\xaf", 0},                                  // overlong, 3 bytes
        {"ok\xed\xa0\x80", 2},                                // a surrogate
        {"\xf4\x90\x80\x80", 0},                              // above U+10FFFF
        {"\xe2\x82", 0},                                      // cut short
    };
    for (const auto& row : rows) {
      CAPTURE(row.text);
      CHECK(invalid_utf8_at(row.text) == row.at);
    }
  }

  TEST_CASE("a valid request decodes field for field; the last value of a metadata key wins") {
    tools::ExecutionRequest message;
    message.set_command("echo");
    message.add_args("a");
    message.add_args(std::string("b\0c", 3));  // NUL is valid UTF-8: the library answers it (exit 2)
    message.set_twin_id("twin-aegis");
    message.set_job_id("job-1");
    message.set_namespace_("ns");
    (*message.mutable_metadata())["k"] = "first";
    (*message.mutable_metadata())[std::string(tools_server::codec::reserved_metadata_key)] = "forged";
    tools_server::wire::ExecutionRequest::MetadataEntry again;
    again.set_key("k");
    again.set_value("second");
    const std::string data = message.SerializeAsString() + std::string(1, static_cast<char>((6 << 3) | 2)) +
                             static_cast<char>(again.ByteSizeLong()) + again.SerializeAsString();
    pagi_exec::Request request;
    REQUIRE(decode(test_support::bytes_of(data), request).ok());
    CHECK(request.tool == "echo");
    CHECK(request.args == std::vector<std::string>{"a", std::string("b\0c", 3)});
    CHECK(request.twin_id == "twin-aegis");
    CHECK(request.job_id == "job-1");
    CHECK(request.ns == "ns");
    CHECK(request.metadata == std::map<std::string, std::string>{{"k", "second"}});  // the forged key is dropped
    CHECK_FALSE(request.authenticated_twin);
    // An empty message is a valid (empty) request: the library answers it in-band.
    CHECK(decode(test_support::bytes_of(""), request).ok());
    CHECK(request.tool.empty());
  }

  TEST_CASE("what cannot be decoded is INVALID_ARGUMENT naming the field") {
    struct Row {
      std::string data;
      const char* says;
    };
    const Row rows[] = {
        {"\x0a\x02\xc3\x28", "command is not valid UTF-8 (byte 0xc3 at offset 0)"},
        {"\x12\x01" "a" "\x12\x02" "b\xff", "args[1] is not valid UTF-8 (byte 0xff at offset 1)"},
        {"\x22\x01\xfe", "job_id is not valid UTF-8"},
        {"\x2a\x01\xfe", "namespace is not valid UTF-8"},
        {"\x32\x03\x0a\x01\xfe", "metadata key #0 is not valid UTF-8"},
        {"\x0a\x09short", "is not a valid tools.ExecutionRequest"},
        {"\xff\xff\xff\xff\xff", "is not a valid tools.ExecutionRequest"},
    };
    for (const auto& row : rows) {
      CAPTURE(row.says);
      pagi_exec::Request request;
      const auto status = decode(test_support::bytes_of(row.data), request);
      CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
      CHECK(status.error_message().find(row.says) != std::string::npos);
    }
  }

  TEST_CASE("the history calls' requests: wire.proto mirrors them, fields are copied, bad bytes named") {
    using google::protobuf::FieldDescriptor;
    const std::pair<const google::protobuf::Descriptor*, const google::protobuf::Descriptor*> pairs[] = {
        {tools::ListExecutionsRequest::descriptor(), tools_server::wire::ListExecutionsRequest::descriptor()},
        {tools::GetExecutionRequest::descriptor(), tools_server::wire::GetExecutionRequest::descriptor()}};
    for (const auto& [original, mirror] : pairs) {
      REQUIRE(original->field_count() == mirror->field_count());
      for (int i = 0; i < original->field_count(); ++i) {
        const auto* field = original->field(i);
        CAPTURE(field->name());
        const auto* twin = mirror->FindFieldByNumber(field->number());
        REQUIRE(twin != nullptr);
        CHECK(twin->name() == field->name());
        CHECK(twin->type() == (field->type() == FieldDescriptor::TYPE_STRING ? FieldDescriptor::TYPE_BYTES : field->type()));
      }
    }
    tools::ListExecutionsRequest sent;
    sent.set_twin_id("twin-aegis");
    sent.set_job_id("j");
    sent.set_outcome("failed");
    sent.set_page_size(7);
    sent.set_page_token("42");
    tools::ListExecutionsRequest list;
    REQUIRE(decode(test_support::bytes_of(sent.SerializeAsString()), list).ok());
    CHECK(list.SerializeAsString() == sent.SerializeAsString());
    tools::GetExecutionRequest get;
    CHECK(decode(test_support::bytes_of("\x0a\x02\xc3\x28"), get).error_message().find(
              "execution_id is not valid UTF-8 (byte 0xc3 at offset 0)") == 0);
    CHECK(decode(test_support::bytes_of("\x1a\x01\xfe"), list).error_message().find("outcome is not valid UTF-8") == 0);
    CHECK(decode(test_support::bytes_of("\xff\xff"), list).error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  }
}
