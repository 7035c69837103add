// SPDX-License-Identifier: Apache-2.0
// Authentication: which twin a caller proves to be (bearer token or client certificate), and the
// rule that binds a request's twin_id to it.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <pagi_exec/pagi_exec.hpp>

namespace tools_server {

enum class AuthMode : std::uint8_t {
  none,   ///< the drop-in behaviour: the twin is whoever the request says
  token,  ///< `authorization: Bearer <token>`; tokens file maps SHA-256(token) -> twin
  mtls,   ///< TLS client certificate: SPIFFE-style URI SAN ".../twin/<id>", else subject CN
};

/// Tokens by digest: one line per token, "<sha256 hex of the token> <twin>", '#' comments.
/// Plaintext tokens never appear in configuration.
class TokenTable {
 public:
  /// Errc::invalid_config naming the file and line: "tokens.txt:3: '<x>' is not a SHA-256 digest
  /// (64 hex digits)"; load: also when the file cannot be read.
  [[nodiscard]] static pagi_exec::Result<TokenTable> load(const std::filesystem::path& path);
  [[nodiscard]] static pagi_exec::Result<TokenTable> parse(std::string_view text, std::string_view source);

  /// The twin `token` proves, comparing its digest with every entry in constant time.
  [[nodiscard]] std::optional<std::string> twin_of(std::string_view token) const;
  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }

 private:
  struct Entry {
    std::array<unsigned char, 32> digest;
    std::string twin;
  };
  std::vector<Entry> entries_;
};

/// Authenticates calls. Thread-safe (immutable after construction).
class Authenticator {
 public:
  static Authenticator none() { return Authenticator(AuthMode::none, {}); }
  static Authenticator with_tokens(TokenTable tokens) { return Authenticator(AuthMode::token, std::move(tokens)); }
  static Authenticator with_client_certificates() { return Authenticator(AuthMode::mtls, {}); }

  /// The twin the caller proved, or UNAUTHENTICATED (nothing runs). In mode none: nullopt.
  [[nodiscard]] tl::expected<std::optional<std::string>, grpc::Status> authenticate(
      const grpc::ServerContextBase& context) const;

  /// Binds `twin_id` to the proven twin: empty takes it, another twin is PERMISSION_DENIED.
  /// Returns OK and leaves `twin_id` alone in mode none.
  [[nodiscard]] grpc::Status bind(const grpc::ServerContextBase& context, std::string& twin_id) const;
  /// The same for a request, which also records the proven twin in Request::authenticated_twin
  /// (for the audit log).
  [[nodiscard]] grpc::Status bind(const grpc::ServerContextBase& context, pagi_exec::Request& request) const;

 private:
  Authenticator(AuthMode mode, TokenTable tokens) : mode_(mode), tokens_(std::move(tokens)) {}
  AuthMode mode_;
  TokenTable tokens_;
};

/// The server's transport security and authenticator, from the settings (see config.hpp):
/// TLS when a certificate is given (client certificates required and verified for mtls),
/// insecure otherwise. Errc::invalid_config naming the setting and the file.
struct Security {
  std::shared_ptr<grpc::ServerCredentials> credentials;
  Authenticator authenticator = Authenticator::none();
  bool tls = false;
};
[[nodiscard]] pagi_exec::Result<Security> make_security(const std::string& mode, const std::filesystem::path& tokens,
                                                                const std::filesystem::path& cert,
                                                                const std::filesystem::path& key,
                                                                const std::filesystem::path& client_ca);

/// The Authenticator in effect; SIGHUP reloads the tokens file into a new one (revoking a token
/// needs no restart). Each call takes a snapshot.
using AuthHolder = pagi_exec::Snapshot<Authenticator>;

/// The twin named by a client certificate's identity: from a URI SAN "spiffe://<domain>/twin/<id>"
/// (the last two path components must be "twin" and the id), else the subject CN.
[[nodiscard]] std::optional<std::string> twin_from_certificate(const std::vector<std::string>& uris,
                                                               const std::vector<std::string>& common_names);

}  // namespace tools_server
