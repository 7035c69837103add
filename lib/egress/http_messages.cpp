// SPDX-License-Identifier: Apache-2.0
#include "egress/http_messages.hpp"

#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/src.hpp>  // Boost.URL compiled here, once: Debian ships it header-only for us
#include <charconv>
#include <sstream>

#include "pagi_exec/egress_domains.hpp"

namespace pagi_exec::egress {
namespace {

namespace http = boost::beast::http;
namespace urls = boost::urls;

Refusal bad_request(std::string reason) { return {400, "egress.bad_request", std::move(reason)}; }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return detail::egress::lower(x) == detail::egress::lower(y);
         });
}

// Fills host and port from an authority; refuses userinfo, IPv6 and names that are no names.
void read_authority(const urls::authority_view& authority, std::uint16_t default_port, ProxyRequest& out) {
  if (authority.has_userinfo()) {
    out.refused = bad_request("credentials in the target (user@host) are not passed on: send them to the server itself");
    return;
  }
  if (authority.host_type() == urls::host_type::ipv6 || authority.host_type() == urls::host_type::ipvfuture) {
    out.refused = Refusal{403, "egress.not_allowed", "IPv6 literals are never allowed: ask for the host by its name"};
    return;
  }
  out.host = normalize_egress_host(authority.encoded_host());
  if (out.host.empty()) {
    out.refused = bad_request("'" + std::string(authority.encoded_host()) + "' is not a host name");
    return;
  }
  if (!authority.has_port()) {
    out.port = default_port;
    return;
  }
  const std::string_view digits = authority.port();
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() || value == 0 || value > 65535) {
    out.refused = bad_request("the port '" + std::string(digits) + "' is not a number from 1 to 65535");
    return;
  }
  out.port = static_cast<std::uint16_t>(value);
}

bool hop_by_hop(std::string_view name, std::string_view connection_header) {
  for (const char* always : {"connection", "keep-alive", "proxy-connection", "proxy-authorization",
                             "proxy-authenticate", "te", "trailer", "upgrade", "host"}) {
    if (iequals(name, always)) return true;
  }
  // Fields the client's Connection header names are for this hop only (RFC 9110, 7.6.1).
  std::size_t start = 0;
  while (start <= connection_header.size()) {
    const std::size_t end = std::min(connection_header.find(',', start), connection_header.size());
    std::string_view token = connection_header.substr(start, end - start);
    while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) token.remove_prefix(1);
    while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
    if (!token.empty() && iequals(name, token)) return true;
    start = end + 1;
  }
  return false;
}

std::string upstream_head(const http::request<http::empty_body>& head, const urls::url_view& url,
                          const ProxyRequest& request) {
  http::request<http::empty_body> out;
  out.method_string(head.method_string());
  std::string target(url.encoded_path());
  if (target.empty()) target = "/";
  if (url.has_query()) target += "?" + std::string(url.encoded_query());
  out.target(target);
  out.version(11);
  out.set(http::field::host, request.port == 80 ? request.host : request.host + ":" + std::to_string(request.port));
  const auto connection = head[http::field::connection];
  for (const auto& field : head) {
    if (!hop_by_hop(field.name_string(), connection)) out.insert(field.name_string(), field.value());
  }
  out.set(http::field::connection, "close");
  std::ostringstream text;
  text << out.base();
  return text.str();
}

}  // namespace

ProxyRequest interpret(const http::request<http::empty_body>& head) {
  ProxyRequest out;
  out.method = std::string(head.method_string());
  const std::string_view target = head.target();
  if (head.method() == http::verb::connect) {
    out.tunnel = true;
    const auto authority = urls::parse_authority(target);
    if (!authority || !authority->has_port()) {
      out.refused = bad_request("CONNECT needs host:port, not '" + std::string(target) + "'");
      return out;
    }
    read_authority(*authority, 0, out);
    return out;
  }
  const auto url = urls::parse_uri(target);  // a fragment, if a client sends one, is dropped
  if (!url) {
    out.refused = bad_request("this is a proxy: ask for an absolute http:// URL (or CONNECT host:port), not '" +
                              std::string(target) + "'");
    return out;
  }
  if (!iequals(url->scheme(), "http")) {
    out.refused = bad_request("only http:// is forwarded; for " + std::string(url->scheme()) +
                              ":// use CONNECT (curl and pip do so when HTTPS_PROXY is set)");
    return out;
  }
  if (!url->has_authority()) {
    out.refused = bad_request("the URL '" + std::string(target) + "' names no host");
    return out;
  }
  read_authority(url->authority(), 80, out);
  if (!out.refused) out.upstream_head = upstream_head(head, *url, out);
  return out;
}

std::string proxy_answer(unsigned status, const std::string& rule, const std::string& body) {
  http::response<http::string_body> answer{static_cast<http::status>(status), 11};
  answer.set(http::field::content_type, "text/plain; charset=utf-8");
  answer.set(http::field::connection, "close");
  answer.set("X-Pagi-Egress-Rule", rule);
  answer.body() = body;
  answer.prepare_payload();
  std::ostringstream text;
  text << answer;
  return text.str();
}

}  // namespace pagi_exec::egress
