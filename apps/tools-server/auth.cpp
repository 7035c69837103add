// SPDX-License-Identifier: Apache-2.0
// Token and client-certificate authentication of twins.
#include "auth.hpp"

#include <grpc/grpc_security_constants.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <array>
#include <fstream>
#include <sstream>

#include <pagi_exec/paths.hpp>

namespace tools_server {
namespace {

std::array<unsigned char, 32> sha256(std::string_view text) {
  std::array<unsigned char, 32> digest{};
  ::SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest.data());
  return digest;
}

std::optional<std::array<unsigned char, 32>> from_hex(std::string_view hex) {
  if (hex.size() != 64) return std::nullopt;
  std::array<unsigned char, 32> out{};
  const auto value = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < 32; ++i) {
    const int hi = value(hex[2 * i]), lo = value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return out;
}

std::vector<std::string> property(const grpc::ServerContextBase& context, const char* name) {
  std::vector<std::string> values;
  const auto auth = context.auth_context();
  if (!auth) return values;
  for (const auto& value : auth->FindPropertyValues(name)) values.emplace_back(value.data(), value.size());
  return values;
}

grpc::Status unauthenticated(const std::string& why) { return {grpc::StatusCode::UNAUTHENTICATED, why}; }

tl::unexpected<pagi_exec::Error> invalid(std::string message) {
  return pagi_exec::fail(pagi_exec::Errc::invalid_config, std::move(message));
}

}  // namespace

pagi_exec::Result<TokenTable> TokenTable::load(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return invalid(path.string() + ": cannot be read");
  std::stringstream text;
  text << in.rdbuf();
  return parse(text.str(), path.string());
}

pagi_exec::Result<TokenTable> TokenTable::parse(std::string_view text, std::string_view source) {
  TokenTable table;
  std::istringstream lines{std::string(text)};
  int number = 0;
  for (std::string line; std::getline(lines, line);) {
    ++number;
    const auto where = std::string(source) + ":" + std::to_string(number) + ": ";
    if (const auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    std::istringstream fields(line);
    std::string digest, twin, extra;
    if (!(fields >> digest)) continue;  // blank or comment
    if (!(fields >> twin)) return invalid(where + "a digest without a twin; write '<sha256 hex> <twin>'");
    if (fields >> extra) return invalid(where + "more than a digest and a twin: '" + extra + "'");
    const auto bytes = from_hex(digest);
    if (!bytes) {
      return invalid(where + "'" + digest + "' is not a SHA-256 digest (64 hex digits); store "
                                    "sha256(token), never the token itself");
    }
    if (const auto why = pagi_exec::why_not_path_component(twin); !why.empty()) {
      return invalid(where + "twin '" + twin + "' " + why);
    }
    for (const auto& entry : table.entries_) {
      if (entry.digest == *bytes) return invalid(where + "the same token digest appears twice");
    }
    table.entries_.push_back({*bytes, twin});
  }
  return table;
}

std::optional<std::string> TokenTable::twin_of(std::string_view token) const {
  const auto digest = sha256(token);
  std::optional<std::string> found;
  for (const auto& entry : entries_) {  // no early exit: the time does not depend on the match
    if (CRYPTO_memcmp(entry.digest.data(), digest.data(), digest.size()) == 0) found = entry.twin;
  }
  return found;
}

std::optional<std::string> twin_from_certificate(const std::vector<std::string>& uris,
                                                 const std::vector<std::string>& common_names) {
  for (const auto& uri : uris) {
    if (uri.rfind("spiffe://", 0) != 0) continue;
    const auto last = uri.rfind('/');
    const auto before = uri.rfind('/', last == 0 ? 0 : last - 1);
    if (last == std::string::npos || before == std::string::npos || last + 1 >= uri.size()) continue;
    if (uri.substr(before + 1, last - before - 1) != "twin") continue;
    const auto twin = uri.substr(last + 1);
    if (pagi_exec::why_not_path_component(twin).empty()) return twin;
  }
  for (const auto& cn : common_names) {
    if (pagi_exec::why_not_path_component(cn).empty()) return cn;
  }
  return std::nullopt;
}

tl::expected<std::optional<std::string>, grpc::Status> Authenticator::authenticate(
    const grpc::ServerContextBase& context) const {
  switch (mode_) {
    case AuthMode::none: return std::optional<std::string>{};
    case AuthMode::token: {
      const auto& metadata = context.client_metadata();
      const auto found = metadata.find("authorization");
      if (found == metadata.end()) return tl::unexpected(unauthenticated("missing 'authorization: Bearer <token>' metadata"));
      const std::string_view value(found->second.data(), found->second.size());
      static constexpr std::string_view bearer = "Bearer ";
      if (value.substr(0, bearer.size()) != bearer) {
        return tl::unexpected(unauthenticated("the authorization metadata must be 'Bearer <token>'"));
      }
      auto twin = tokens_.twin_of(value.substr(bearer.size()));
      if (!twin) return tl::unexpected(unauthenticated("unknown or revoked token"));
      return std::optional<std::string>(std::move(twin));
    }
    case AuthMode::mtls: {
      // The handshake already verified the chain against TOOLS_TLS_CLIENT_CA.
      auto uris = property(context, GRPC_PEER_SPIFFE_ID_PROPERTY_NAME);
      const auto sans = property(context, GRPC_X509_SAN_PROPERTY_NAME);
      uris.insert(uris.end(), sans.begin(), sans.end());
      auto twin = twin_from_certificate(uris, property(context, GRPC_X509_CN_PROPERTY_NAME));
      if (!twin) {
        return tl::unexpected(unauthenticated("the client certificate names no twin (URI SAN spiffe://<domain>/twin/<id> "
                                              "or subject CN)"));
      }
      return std::optional<std::string>(std::move(twin));
    }
  }
  return tl::unexpected(unauthenticated("unknown authentication mode"));
}

grpc::Status Authenticator::bind(const grpc::ServerContextBase& context, std::string& twin_id) const {
  const auto proven = authenticate(context);
  if (!proven) return proven.error();
  if (!*proven) return grpc::Status::OK;
  if (twin_id.empty()) twin_id = **proven;
  if (twin_id != **proven) {
    return {grpc::StatusCode::PERMISSION_DENIED,
            "authenticated as twin '" + **proven + "' but the request names twin '" + twin_id + "'"};
  }
  return grpc::Status::OK;
}

grpc::Status Authenticator::bind(const grpc::ServerContextBase& context, pagi_exec::Request& request) const {
  if (auto status = bind(context, request.twin_id); !status.ok()) return status;
  if (mode_ != AuthMode::none) request.authenticated_twin = request.twin_id;
  return grpc::Status::OK;
}

namespace {

pagi_exec::Result<std::string> read_pem(const std::filesystem::path& path, const char* setting) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  if (!in || text.str().find("-----BEGIN") == std::string::npos) {
    return invalid(std::string(setting) + ": '" + path.string() + "' is not a readable PEM file");
  }
  return text.str();
}

pagi_exec::Result<Authenticator> make_authenticator(const std::string& mode, const std::filesystem::path& tokens) {
  if (mode == "mtls") return Authenticator::with_client_certificates();
  if (mode != "token") return Authenticator::none();
  return TokenTable::load(tokens).map(&Authenticator::with_tokens).map_error([](const pagi_exec::Error& error) {
    return pagi_exec::Error::make(error.code, "TOOLS_AUTH_TOKENS_FILE / --auth-tokens-file: " + error.message());
  });
}

// The server's certificate chain and key; with mtls also the CA client certificates must chain to.
pagi_exec::Result<grpc::SslServerCredentialsOptions> tls_options(const std::string& mode, const std::filesystem::path& cert,
                                                                 const std::filesystem::path& key,
                                                                 const std::filesystem::path& client_ca) {
  grpc::SslServerCredentialsOptions options(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  return read_pem(cert, "TOOLS_TLS_CERT / --tls-cert")
      .and_then([&](std::string cert_pem) {
        return read_pem(key, "TOOLS_TLS_KEY / --tls-key").map([&](std::string key_pem) {
          options.pem_key_cert_pairs.push_back({std::move(key_pem), std::move(cert_pem)});
        });
      })
      .and_then([&]() -> pagi_exec::Result<void> {
        if (mode != "mtls") return {};
        return read_pem(client_ca, "TOOLS_TLS_CLIENT_CA / --tls-client-ca").map([&](std::string ca_pem) {
          options.pem_root_certs = std::move(ca_pem);
          options.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
        });
      })
      .map([&] { return options; });
}

}  // namespace

pagi_exec::Result<Security> make_security(const std::string& mode, const std::filesystem::path& tokens,
                                          const std::filesystem::path& cert, const std::filesystem::path& key,
                                          const std::filesystem::path& client_ca) {
  return make_authenticator(mode, tokens).and_then([&](Authenticator authenticator) -> pagi_exec::Result<Security> {
    if (cert.empty()) return Security{grpc::InsecureServerCredentials(), std::move(authenticator), false};
    return tls_options(mode, cert, key, client_ca).map([&](const grpc::SslServerCredentialsOptions& options) {
      return Security{grpc::SslServerCredentials(options), std::move(authenticator), true};
    });
  });
}

}  // namespace tools_server
