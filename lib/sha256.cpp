// SPDX-License-Identifier: Apache-2.0
#include "sha256.hpp"

#include <array>
#include <cstdint>
#include <memory>
#include <stdexcept>

#include <openssl/evp.h>

namespace pagi_exec::detail {
namespace {

std::string hex(std::span<const unsigned char> digest) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(digest.size() * 2);
  for (const unsigned char byte : digest) {
    out += digits[byte >> 4];
    out += digits[byte & 0x0f];
  }
  return out;
}

// EVP's one-shot and incremental forms; a failure is an allocation failure inside OpenSSL.
class Digest {
 public:
  Digest() : context_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
    if (!context_ || EVP_DigestInit_ex(context_.get(), EVP_sha256(), nullptr) != 1) throw std::bad_alloc();
  }
  void add(const void* data, std::size_t size) {
    if (EVP_DigestUpdate(context_.get(), data, size) != 1) throw std::bad_alloc();
  }
  std::string hex_digest() {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int size = 0;
    if (EVP_DigestFinal_ex(context_.get(), digest.data(), &size) != 1) throw std::bad_alloc();
    return hex(std::span(digest.data(), size));
  }

 private:
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> context_;
};

}  // namespace

std::string sha256_hex(std::string_view bytes) {
  Digest digest;
  digest.add(bytes.data(), bytes.size());
  return digest.hex_digest();
}

std::string sha256_hex_of_parts(std::span<const std::string_view> parts) {
  Digest digest;
  for (const auto part : parts) {
    std::array<unsigned char, 8> length{};
    auto size = static_cast<std::uint64_t>(part.size());
    for (auto& byte : length) {
      byte = static_cast<unsigned char>(size & 0xff);
      size >>= 8;
    }
    digest.add(length.data(), length.size());
    digest.add(part.data(), part.size());
  }
  return digest.hex_digest();
}

}  // namespace pagi_exec::detail
