// SPDX-License-Identifier: Apache-2.0
// The egress proxy's decisions without sockets: which addresses it refuses, and how it reads a
// request head and rewrites it for the upstream.
// gcc 12 under AddressSanitizer reports -Wmaybe-uninitialized inside Beast's parser (a
// boost::optional that only the instrumentation's extra paths seem to leave unset), and the
// sanitized build (scripts/sanitize.sh) turns warnings into errors.
#if defined(__SANITIZE_ADDRESS__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <doctest/doctest.h>

#include <ifaddrs.h>
#include <netinet/in.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <cstring>
#include <memory>

#include "egress/address_policy.hpp"
#include "egress/http_messages.hpp"
#include "test_support.hpp"

namespace http = boost::beast::http;
using pagi_exec::egress::AddressPolicy;
using pagi_exec::egress::interpret;
using pagi_exec::egress::parse_address;
using pagi_exec::egress::ProxyRequest;

namespace {

std::optional<std::string> blocked(const AddressPolicy& policy, const char* text) {
  const auto address = parse_address(text);
  REQUIRE_MESSAGE(address.has_value(), text);
  return policy.why_blocked(*address);
}

// A head as a client sends it, read by Beast as the proxy reads it.
ProxyRequest ask(std::string text) {
  http::request_parser<http::empty_body> parser;
  boost::system::error_code error;
  parser.put(boost::asio::buffer(text), error);
  REQUIRE_MESSAGE(!error, error.message());
  REQUIRE(parser.is_header_done());
  return interpret(parser.get());
}

// A non-loopback address of one of this machine's interfaces, if it has one.
std::optional<std::string> own_address() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return std::nullopt;
  const std::unique_ptr<ifaddrs, decltype(&freeifaddrs)> owned(list, &freeifaddrs);
  for (const ifaddrs* entry = list; entry != nullptr; entry = entry->ifa_next) {
    if (entry->ifa_addr == nullptr || entry->ifa_addr->sa_family != AF_INET) continue;
    pagi_exec::egress::Address address;
    std::memcpy(address.bytes.data(), &reinterpret_cast<const sockaddr_in*>(entry->ifa_addr)->sin_addr, 4);
    address.size = 4;
    if (address.bytes[0] != 127) return address.text();
  }
  return std::nullopt;
}

}  // namespace

TEST_SUITE("egress rules") {
  TEST_CASE("the proxy refuses loopback, private, link-local, multicast and reserved addresses") {
    const auto policy = AddressPolicy::make({}).value();
    struct Row {
      const char* address;
      const char* range;
    };
    for (const Row& row : {Row{"127.0.0.1", "127.0.0.0/8"}, Row{"127.255.0.9", "127.0.0.0/8"},
                           Row{"0.0.0.0", "0.0.0.0/8"}, Row{"10.1.2.3", "10.0.0.0/8"},
                           Row{"172.16.0.1", "172.16.0.0/12"}, Row{"172.31.255.255", "172.16.0.0/12"},
                           Row{"192.168.1.1", "192.168.0.0/16"}, Row{"169.254.169.254", "169.254.0.0/16"},
                           Row{"100.64.0.1", "100.64.0.0/10"}, Row{"224.0.0.1", "224.0.0.0/4"},
                           Row{"255.255.255.255", "240.0.0.0/4"}, Row{"::1", "::/96"}, Row{"::", "::/96"},
                           Row{"fd00::1", "fc00::/7"}, Row{"fe80::1", "fe80::/10"}, Row{"ff02::1", "ff00::/8"},
                           // The same addresses in IPv6 spellings that reach them.
                           Row{"::ffff:127.0.0.1", "127.0.0.0/8"}, Row{"::ffff:169.254.169.254", "169.254.0.0/16"}}) {
      CAPTURE(row.address);
      const auto why = blocked(policy, row.address);
      REQUIRE(why.has_value());
      CHECK(*why == row.range);
    }
    // IPv4 inside NAT64 and 6to4 addresses is checked as IPv4.
    CHECK(blocked(policy, "64:ff9b::7f00:1").value_or("").starts_with("127.0.0.0/8"));
    CHECK(blocked(policy, "2002:a00:1::1").value_or("").starts_with("10.0.0.0/8"));
    CHECK(blocked(policy, "2001:0:4136:e378:8000:63bf:3fff:fdd2").value_or("") == "2001::/32");  // Teredo
    // Public and documentation addresses pass: the test upstreams live on TEST-NET.
    for (const char* open : {"198.51.100.2", "192.0.2.7", "203.0.113.9", "8.8.8.8", "172.32.0.1", "2606:4700::1111",
                             "64:ff9b::808:808"}) {
      CAPTURE(open);
      CHECK_FALSE(blocked(policy, open).has_value());
    }
  }

  TEST_CASE("the host's own addresses are refused, however public") {
    const auto mine = own_address();
    if (!mine) {
      test_support::skip_case("this machine has no non-loopback IPv4 address to test with");
      return;
    }
    const auto policy = AddressPolicy::make({}).value();
    const auto why = blocked(policy, mine->c_str());
    REQUIRE(why.has_value());
    CHECK(why->find(*mine) != std::string::npos);
  }

  TEST_CASE("an operator opens a range on purpose, and only that range") {
    const auto policy = AddressPolicy::make({"10.20.0.0/16", "127.0.0.1/32"}).value();
    CHECK_FALSE(blocked(policy, "10.20.5.5").has_value());
    CHECK(blocked(policy, "10.21.0.1") == std::optional<std::string>("10.0.0.0/8"));
    CHECK_FALSE(blocked(policy, "127.0.0.1").has_value());
    CHECK_FALSE(blocked(policy, "::ffff:127.0.0.1").has_value());
    CHECK(blocked(policy, "127.0.0.2").has_value());
    const auto bad = AddressPolicy::make({"10.20.0.1/16"});
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().message().find("TOOLS_EGRESS_ALLOW_RANGES") != std::string::npos);
    CHECK(bad.error().message().find("past its /16 prefix") != std::string::npos);
  }

  TEST_CASE("without a port an allow pattern covers 80 and 443, a deny pattern every port") {
    using pagi_exec::first_match;
    using pagi_exec::UnsetPort;
    const std::vector<pagi_exec::DomainPattern> patterns = {pagi_exec::parse_domain_pattern("*.example.test").value()};
    CHECK(first_match(patterns, "a.example.test", 443) != nullptr);
    CHECK(first_match(patterns, "a.example.test", 80) != nullptr);
    CHECK(first_match(patterns, "a.example.test", 22) == nullptr);
    CHECK(first_match(patterns, "a.example.test", 22, UnsetPort::any_port) != nullptr);
    CHECK(first_match(patterns, "example.test", 22, UnsetPort::any_port) == nullptr);
    const std::vector<pagi_exec::DomainPattern> ported = {pagi_exec::parse_domain_pattern("x.test:8443").value()};
    CHECK(first_match(ported, "x.test", 8443, UnsetPort::any_port) != nullptr);
    CHECK(first_match(ported, "x.test", 443, UnsetPort::any_port) == nullptr);
  }

  TEST_CASE("CONNECT asks for host:port; the host is normalized") {
    const auto r = ask("CONNECT PyPI.org.:443 HTTP/1.1\r\nHost: pypi.org:443\r\n\r\n");
    CHECK_FALSE(r.refused.has_value());
    CHECK(r.tunnel);
    CHECK(r.method == "CONNECT");
    CHECK(r.host == "pypi.org");
    CHECK(r.port == 443);
    CHECK(r.upstream_head.empty());
  }

  TEST_CASE("requests the proxy never passes on are refused with the reason") {
    struct Row {
      const char* head;
      unsigned status;
      const char* rule;
      const char* says;
    };
    for (const Row& row : {
             Row{"CONNECT pypi.org HTTP/1.1\r\n\r\n", 400, "egress.bad_request", "host:port"},
             Row{"CONNECT [::1]:443 HTTP/1.1\r\n\r\n", 403, "egress.not_allowed", "IPv6"},
             Row{"CONNECT pypi.org:0 HTTP/1.1\r\n\r\n", 400, "egress.bad_request", "1 to 65535"},
             Row{"CONNECT pypi.org:99999 HTTP/1.1\r\n\r\n", 400, "egress.bad_request", "1 to 65535"},
             Row{"CONNECT user:pw@pypi.org:443 HTTP/1.1\r\n\r\n", 400, "egress.bad_request", "credentials"},
             Row{"GET /simple HTTP/1.1\r\nHost: pypi.org\r\n\r\n", 400, "egress.bad_request", "absolute http://"},
             Row{"GET https://pypi.org/ HTTP/1.1\r\n\r\n", 400, "egress.bad_request", "use CONNECT"},
             Row{"GET ftp://pypi.org/ HTTP/1.1\r\n\r\n", 400, "egress.bad_request", "use CONNECT"},
             Row{"GET http://[::1]/ HTTP/1.1\r\n\r\n", 403, "egress.not_allowed", "IPv6"},
             Row{"GET http://a%2eb/ HTTP/1.1\r\n\r\n", 400, "egress.bad_request", "not a host name"},
             Row{"GET http://a@pypi.org/ HTTP/1.1\r\n\r\n", 400, "egress.bad_request", "credentials"},
         }) {
      CAPTURE(row.head);
      const auto r = ask(row.head);
      REQUIRE(r.refused.has_value());
      CHECK(r.refused->status == row.status);
      CHECK(r.refused->rule == row.rule);
      CHECK(r.refused->reason.find(row.says) != std::string::npos);
    }
  }

  TEST_CASE("a forwarded request reaches the upstream in origin form, with its Host, without hop-by-hop fields") {
    const auto r = ask(
        "POST http://Example.test:8080/a/b?q=1#frag HTTP/1.1\r\n"
        "Host: spoofed.test\r\n"
        "Proxy-Authorization: Basic c2VjcmV0\r\n"
        "Proxy-Connection: keep-alive\r\n"
        "Connection: keep-alive, X-Private\r\n"
        "X-Private: for the proxy only\r\n"
        "Keep-Alive: 300\r\n"
        "Content-Length: 3\r\n"
        "Accept: */*\r\n\r\n");
    REQUIRE_FALSE(r.refused.has_value());
    CHECK_FALSE(r.tunnel);
    CHECK(r.method == "POST");
    CHECK(r.host == "example.test");
    CHECK(r.port == 8080);
    const std::string& head = r.upstream_head;
    CHECK(head.starts_with("POST /a/b?q=1 HTTP/1.1\r\n"));
    CHECK(head.find("Host: example.test:8080\r\n") != std::string::npos);
    CHECK(head.find("spoofed") == std::string::npos);
    CHECK(head.find("Proxy-") == std::string::npos);
    CHECK(head.find("X-Private") == std::string::npos);
    CHECK(head.find("Keep-Alive") == std::string::npos);
    CHECK(head.find("Content-Length: 3\r\n") != std::string::npos);
    CHECK(head.find("Accept: */*\r\n") != std::string::npos);
    CHECK(head.find("Connection: close\r\n") != std::string::npos);
    CHECK(head.ends_with("\r\n\r\n"));
    // Port 80 is not written; an empty path is "/".
    const auto plain = ask("GET http://example.test HTTP/1.0\r\n\r\n");
    REQUIRE_FALSE(plain.refused.has_value());
    CHECK(plain.port == 80);
    CHECK(plain.upstream_head.starts_with("GET / HTTP/1.1\r\nHost: example.test\r\n"));
  }

  TEST_CASE("the proxy's own answer names its rule in the body and in a header") {
    const auto text = pagi_exec::egress::proxy_answer(403, "egress.not_allowed", "x.test:443 is not allowed\n");
    CHECK(text.starts_with("HTTP/1.1 403 Forbidden\r\n"));
    CHECK(text.find("X-Pagi-Egress-Rule: egress.not_allowed\r\n") != std::string::npos);
    CHECK(text.find("Connection: close\r\n") != std::string::npos);
    CHECK(text.find("Content-Length: 26\r\n") != std::string::npos);
    CHECK(text.ends_with("\r\n\r\nx.test:443 is not allowed\n"));
  }
}
