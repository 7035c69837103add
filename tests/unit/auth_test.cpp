// SPDX-License-Identifier: Apache-2.0
// Unit: the tokens file (good and bad lines), the token check, the twin a client certificate
// names, the bearer-token check and the binding of a request to the proven twin (metadata injected
// into a ServerContext), and the security settings' file errors; no handshake, no socket.
#include <doctest/doctest.h>

#include <string>

#include <grpcpp/test/server_context_test_spouse.h>

#include "auth.hpp"

using namespace tools_server;

namespace {

// sha256("secret-a") and sha256("secret-b"), as an operator writes them in the tokens file.
const std::string digest_a = "8766b9cb08e6040b704f1e3ee1e186efccf2635b1d2634d6525333007e6aeae1";
const std::string digest_b = "ff492ef788c89b555e6f738b33d2422f57dbb6656af2402155672c5f123a90af";

std::string error_of(std::string_view text) {
  const auto table = TokenTable::parse(text, "tokens.txt");
  REQUIRE_FALSE(table);
  CHECK(table.error().code == pagi_exec::Errc::invalid_config);
  return table.error().message();
}

Authenticator token_authenticator() {
  auto table = TokenTable::parse(digest_a + " twin-a\n", "tokens.txt");
  REQUIRE(table);
  return Authenticator::with_tokens(std::move(*table));
}

}  // namespace

TEST_SUITE("auth") {
  TEST_CASE("a tokens file maps the SHA-256 of each token to its twin; comments and blank lines pass") {
    const auto table = TokenTable::parse("# operators\n" + digest_a + " twin-a  # the orchestrator\n\n" +
                                             digest_b + "\ttwin-b\n",
                                         "tokens.txt");
    REQUIRE(table);
    CHECK(table->size() == 2);
    CHECK(table->twin_of("secret-a") == "twin-a");
    CHECK(table->twin_of("secret-b") == "twin-b");
    CHECK_FALSE(table->twin_of("secret-c"));
    CHECK_FALSE(table->twin_of(digest_a));  // the digest itself is no token
    CHECK_FALSE(table->twin_of(""));
  }

  TEST_CASE("a bad line names the file and line") {
    CHECK(error_of("\n" + digest_a + "\n") == "tokens.txt:2: a digest without a twin; write '<sha256 hex> <twin>'");
    CHECK(error_of(digest_a + " twin-a extra\n") == "tokens.txt:1: more than a digest and a twin: 'extra'");
    CHECK(error_of("secret-a twin-a\n").rfind("tokens.txt:1: 'secret-a' is not a SHA-256 digest (64 hex digits)", 0) == 0);
    CHECK(error_of(digest_a + " ../etc\n").rfind("tokens.txt:1: twin '../etc' ", 0) == 0);
    CHECK(error_of(digest_a + " twin-a\n" + digest_a + " twin-b\n") == "tokens.txt:2: the same token digest appears twice");
  }

  TEST_CASE("a tokens file that cannot be read says so") {
    const auto table = TokenTable::load("/nonexistent/tokens.txt");
    REQUIRE_FALSE(table);
    CHECK(table.error().message() == "/nonexistent/tokens.txt: cannot be read");
  }

  TEST_CASE("a client certificate names its twin by a SPIFFE URI, else by its subject CN") {
    CHECK(twin_from_certificate({"spiffe://example.org/twin/twin-a"}, {"twin-cn"}) == "twin-a");
    CHECK(twin_from_certificate({"https://example.org/twin/twin-a"}, {"twin-cn"}) == "twin-cn");
    CHECK(twin_from_certificate({"spiffe://example.org/agent/twin-a"}, {}) == std::nullopt);
    CHECK(twin_from_certificate({"spiffe://example.org/twin/"}, {"twin-cn"}) == "twin-cn");
    CHECK(twin_from_certificate({"spiffe://example.org/twin/.."}, {".."}) == std::nullopt);
    CHECK(twin_from_certificate({}, {}) == std::nullopt);
  }

  TEST_CASE("security settings: a missing tokens file or PEM file names the setting") {
    auto security = make_security("token", "/nonexistent/tokens.txt", {}, {}, {});
    REQUIRE_FALSE(security);
    CHECK(security.error().message() ==
          "TOOLS_AUTH_TOKENS_FILE / --auth-tokens-file: /nonexistent/tokens.txt: cannot be read");
    security = make_security("none", {}, "/nonexistent/cert.pem", "/nonexistent/key.pem", {});
    REQUIRE_FALSE(security);
    CHECK(security.error().message() == "TOOLS_TLS_CERT / --tls-cert: '/nonexistent/cert.pem' is not a readable PEM file");
    security = make_security("none", {}, {}, {}, {});
    REQUIRE(security);
    CHECK_FALSE(security->tls);
  }

  TEST_CASE("a bearer token proves its twin; a missing, malformed or unknown one is UNAUTHENTICATED") {
    const auto auth = token_authenticator();
    grpc::ServerContext none;
    CHECK(auth.authenticate(none).error().error_message() == "missing 'authorization: Bearer <token>' metadata");
    grpc::ServerContext basic;
    grpc::testing::ServerContextTestSpouse basic_spouse(&basic);
    basic_spouse.AddClientMetadata("authorization", "Basic secret-a");
    CHECK(auth.authenticate(basic).error().error_code() == grpc::StatusCode::UNAUTHENTICATED);
    grpc::ServerContext unknown;
    grpc::testing::ServerContextTestSpouse unknown_spouse(&unknown);
    unknown_spouse.AddClientMetadata("authorization", "Bearer secret-b");
    CHECK(auth.authenticate(unknown).error().error_message() == "unknown or revoked token");
    grpc::ServerContext good;
    grpc::testing::ServerContextTestSpouse good_spouse(&good);
    good_spouse.AddClientMetadata("authorization", "Bearer secret-a");
    const auto proven = auth.authenticate(good);
    REQUIRE(proven);
    CHECK(*proven == "twin-a");
  }

  TEST_CASE("binding: the proven twin fills an empty twin_id, another is PERMISSION_DENIED") {
    const auto auth = token_authenticator();
    grpc::ServerContext context;
    grpc::testing::ServerContextTestSpouse spouse(&context);
    spouse.AddClientMetadata("authorization", "Bearer secret-a");
    pagi_exec::Request request;
    REQUIRE(auth.bind(context, request).ok());
    CHECK(request.twin_id == "twin-a");
    CHECK(request.authenticated_twin == "twin-a");  // what the audit log records
    pagi_exec::Request other{.twin_id = "twin-b"};
    const auto denied = auth.bind(context, other);
    CHECK(denied.error_code() == grpc::StatusCode::PERMISSION_DENIED);
    CHECK(denied.error_message() == "authenticated as twin 'twin-a' but the request names twin 'twin-b'");
  }

  TEST_CASE("without authentication the request's twin stands and nothing is proven") {
    const auto auth = Authenticator::none();
    grpc::ServerContext context;
    const auto proven = auth.authenticate(context);
    REQUIRE(proven);
    CHECK_FALSE(*proven);
    pagi_exec::Request request{.twin_id = "twin-b"};
    REQUIRE(auth.bind(context, request).ok());
    CHECK(request.twin_id == "twin-b");
    CHECK_FALSE(request.authenticated_twin);
  }
}
