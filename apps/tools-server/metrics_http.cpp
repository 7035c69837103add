// SPDX-License-Identifier: Apache-2.0
// The metrics listener on Boost.Beast: one io thread, a coroutine per connection, a deadline per
// request, and the connection open longest closed when a new one needs its place.
// gcc 12 under AddressSanitizer reports -Wmaybe-uninitialized inside Beast's parser, as in
// lib/egress/proxy.cpp, and the sanitized build (scripts/sanitize.sh) turns warnings into errors.
#if defined(__SANITIZE_ADDRESS__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "metrics_http.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <iostream>
#include <list>
#include <thread>

#include "config.hpp"
#include "log.hpp"
#include "metrics.hpp"

namespace tools_server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr const char* content_type = "text/plain; version=0.0.4; charset=utf-8";
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
// A scrape is one small GET: a larger head or any body of size is not one.
constexpr std::uint32_t max_head_bytes = 8 * 1024;
constexpr std::uint64_t max_body_bytes = 4 * 1024;
constexpr std::size_t max_requests_per_connection = 100;

}  // namespace

struct MetricsHttp::Impl {
  const pagi_exec::Host& host;
  std::string address;
  std::string url;
  // The io thread's alone: the connections open, oldest first.
  std::list<beast::tcp_stream*> open;
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  std::thread thread;

  explicit Impl(const pagi_exec::Host& h) : host(h) {}

  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [error, socket] = co_await acceptor.async_accept(nothrow);
      if (!acceptor.is_open()) co_return;
      if (error) {  // out of descriptors, most likely: try again in a while rather than spin
        asio::steady_timer pause(io, std::chrono::milliseconds(100));
        (void)co_await pause.async_wait(nothrow);
        continue;
      }
      if (open.size() >= metrics_max_connections) {
        beast::error_code ignored;
        open.front()->socket().close(ignored);  // its coroutine ends and leaves `open`
        open.pop_front();
      }
      asio::co_spawn(io, serve(beast::tcp_stream(std::move(socket))), asio::detached);
    }
  }

  asio::awaitable<void> serve(beast::tcp_stream stream) {
    open.push_back(&stream);
    struct Listed {  // however the coroutine ends (closed to make room, or destroyed at the stop)
      std::list<beast::tcp_stream*>& open;
      beast::tcp_stream* stream;
      ~Listed() { open.remove(stream); }
    } listed{open, &stream};
    beast::flat_buffer buffer;
    for (std::size_t served = 0; served < max_requests_per_connection; ++served) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(max_head_bytes);
      parser.body_limit(max_body_bytes);
      stream.expires_after(metrics_request_deadline);
      const auto [read_error, read] = co_await http::async_read(stream, buffer, parser, nothrow);
      if (read_error) break;  // timed out, closed, or not HTTP: nothing worth an answer
      const auto& request = parser.get();
      const std::string_view whole_target = request.target();
      const auto target = whole_target.substr(0, whole_target.find('?'));  // the path, as Prometheus may add a query
      http::response<http::string_body> response;
      response.version(request.version());
      response.keep_alive(request.keep_alive());
      if (request.method() == http::verb::get && target == "/metrics") {
        response.result(http::status::ok);
        response.set(http::field::content_type, content_type);
        response.body() = render_metrics(host);
      } else {
        response.result(http::status::not_found);
        response.set(http::field::content_type, "text/plain");
        response.body() = "not found: metrics are at /metrics\n";
      }
      response.prepare_payload();
      stream.expires_after(metrics_request_deadline);
      const auto [write_error, written] = co_await http::async_write(stream, response, nothrow);
      if (write_error || !response.keep_alive()) break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }
};

std::string render_metrics(const pagi_exec::Host& host) {
  const auto health = host.health();
  std::string text;
  server_metrics().render(text, health.admission ? health.admission->usage().running : 0, health.policy_revision);
  return text;
}

MetricsHttp::MetricsHttp(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

pagi_exec::Result<std::unique_ptr<MetricsHttp>> MetricsHttp::start(const std::string& address,
                                                                   const pagi_exec::Host& host) {
  if (address.empty()) return nullptr;
  const auto colon = address.rfind(':');
  std::string name = address.substr(0, colon);
  const std::string port = address.substr(colon + 1);  // config.cpp checked it: 0-65535
  if (name.size() > 2 && name.front() == '[' && name.back() == ']') name = name.substr(1, name.size() - 2);
  const auto cannot = [&](const beast::error_code& error) {
    return pagi_exec::fail(pagi_exec::Errc::io, "TOOLS_METRICS_ADDR / --metrics-addr: cannot listen on " + address +
                                                    ": " + error.message());
  };

  auto impl = std::make_unique<Impl>(host);
  impl->address = address;
  beast::error_code error;
  tcp::resolver resolver(impl->io);
  const auto endpoints = resolver.resolve(name, port, tcp::resolver::passive | tcp::resolver::numeric_service, error);
  if (error || endpoints.empty()) return cannot(error);
  auto& acceptor = impl->acceptor;
  const auto endpoint = endpoints.begin()->endpoint();
  // SO_REUSEADDR lets a restart bind over its old TIME_WAIT connections; never SO_REUSEPORT,
  // with which a second server on a busy port would start and share it.
  if (acceptor.open(endpoint.protocol(), error); error) return cannot(error);
  acceptor.set_option(asio::socket_base::reuse_address(true), error);
  if (acceptor.bind(endpoint, error); error) return cannot(error);
  if (acceptor.listen(asio::socket_base::max_listen_connections, error); error) return cannot(error);
  const auto bound = acceptor.local_endpoint(error).port();
  if (error) return cannot(error);
  impl->url = "http://" + address.substr(0, colon) + ":" + std::to_string(bound) + "/metrics";
  asio::co_spawn(impl->io, impl->accept_loop(), asio::detached);
  impl->thread = std::thread([raw = impl.get()] { raw->io.run(); });
  return std::unique_ptr<MetricsHttp>(new MetricsHttp(std::move(impl)));
}

const std::string& MetricsHttp::url() const noexcept { return impl_->url; }

void MetricsHttp::announce() const {
  std::cout << "metrics on " << impl_->url << std::endl;
  if (!is_loopback(impl_->address)) {
    log(LogLevel::warn, "metrics on " + impl_->url + " are reachable beyond loopback (TOOLS_METRICS_ADDR): they hold "
                        "no twin data, but show the server's load and policy revision to whoever reaches them");
  }
  log(LogLevel::info, "metrics on " + impl_->url);
}

// Stops accepting and serving; the connections' coroutines are destroyed with the io_context
// (their sockets close), after the thread is joined.
MetricsHttp::~MetricsHttp() {
  asio::post(impl_->io, [impl = impl_.get()] {
    beast::error_code ignored;
    impl->acceptor.close(ignored);
    impl->io.stop();
  });
  impl_->thread.join();
}

}  // namespace tools_server
