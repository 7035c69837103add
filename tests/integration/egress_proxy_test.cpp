// SPDX-License-Identifier: Apache-2.0
// The egress proxy over real sockets on loopback: clients and upstreams are this test's own
// threads, the run's listener a socket of the test's (the server makes it inside the run's
// namespace; tests/e2e/egress_test.py covers that path). 127.0.0.1 is refused by default, so the
// upstreams are reached through a range the test opens on purpose, as an operator would.
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "egress/proxy.hpp"
#include "test_support.hpp"

namespace {

using pagi_exec::DomainPattern;
using pagi_exec::EgressConnection;
using pagi_exec::EgressSettings;
using pagi_exec::egress::Proxy;
using pagi_exec::sys::unique_fd;

DomainPattern pattern(const std::string& text) { return pagi_exec::parse_domain_pattern(text).value(); }

// A TCP socket listening on 127.0.0.1 on a port the kernel picks.
unique_fd listener(std::uint16_t& port) {
  unique_fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  REQUIRE(listen(fd.get(), 64) == 0);
  socklen_t size = sizeof address;
  REQUIRE(getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &size) == 0);
  port = ntohs(address.sin_port);
  return fd;
}

unique_fd connect_to(std::uint16_t port) {
  unique_fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd);
  const timeval timeout{.tv_sec = 20, .tv_usec = 0};  // a broken proxy fails the test, not hangs it
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  REQUIRE(connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  return fd;
}

void send_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const auto sent = send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    REQUIRE(sent > 0);
    bytes.remove_prefix(static_cast<std::size_t>(sent));
  }
}

// Reads until the head ends ("\r\n\r\n"); returns it, or what came before the stream ended.
std::string read_head(int fd) {
  std::string out;
  char c = 0;
  while (!out.ends_with("\r\n\r\n") && recv(fd, &c, 1, 0) == 1) out += c;
  return out;
}

std::string read_exactly(int fd, std::size_t count) {
  std::string out(count, '\0');
  std::size_t got = 0;
  while (got < count) {
    const auto n = recv(fd, out.data() + got, count - got, 0);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  out.resize(got);
  return out;
}

std::string read_to_end(int fd) {
  std::string out;
  char buffer[4096];
  for (ssize_t n; (n = recv(fd, buffer, sizeof buffer, 0)) > 0;) out.append(buffer, static_cast<std::size_t>(n));
  return out;
}

// Upstreams on loopback: an echo server, and an HTTP server that keeps the heads it was sent.
class Upstreams {
 public:
  Upstreams() {
    echo_fd_ = listener(echo_port);
    http_fd_ = listener(http_port);
    threads_.emplace_back([this] { serve(echo_fd_.get(), [](int fd) { echo(fd); }); });
    threads_.emplace_back([this] { serve(http_fd_.get(), [this](int fd) { answer(fd); }); });
    closed_port = [] {
      std::uint16_t port = 0;
      (void)listener(port);  // closed at once: nothing listens there
      return port;
    }();
  }
  ~Upstreams() {
    shutdown(echo_fd_.get(), SHUT_RDWR);
    shutdown(http_fd_.get(), SHUT_RDWR);
    for (auto& t : threads_) t.join();
  }
  std::vector<std::string> heads() {
    std::lock_guard lock(mutex_);
    return heads_;
  }

  std::uint16_t echo_port = 0, http_port = 0, closed_port = 0;

 private:
  template <typename Handler>
  void serve(int fd, Handler handle) {
    std::vector<std::thread> served;
    for (int client; (client = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC)) >= 0;) {
      served.emplace_back([client, handle] {
        handle(client);
        close(client);
      });
    }
    for (auto& t : served) t.join();
  }
  static void echo(int fd) {
    char buffer[16384];
    for (ssize_t n; (n = recv(fd, buffer, sizeof buffer, 0)) > 0;) {
      if (send(fd, buffer, static_cast<std::size_t>(n), MSG_NOSIGNAL) != n) return;
    }
  }
  void answer(int fd) {
    const auto head = read_head(fd);
    {
      std::lock_guard lock(mutex_);
      heads_.push_back(head);
    }
    const std::string_view reply = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
    (void)send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
  }

  unique_fd echo_fd_, http_fd_;
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::vector<std::string> heads_;
};

// A proxy whose records land here, and one run served on a loopback port of the test's.
struct Fixture {
  explicit Fixture(EgressSettings settings, pagi_exec::egress::EgressRules rules) {
    auto made = Proxy::make(std::move(settings), [this](const EgressConnection& c) {
      std::lock_guard lock(mutex);
      records.push_back(c);
    });
    REQUIRE_MESSAGE(made.has_value(), (made ? "" : made.error().message()));
    proxy = std::move(*made);
    auto served = proxy->serve(listener(port), std::move(rules), "twin-test", "exec-1");
    REQUIRE(served.has_value());
    session.emplace(std::move(*served));
  }
  std::vector<EgressConnection> seen() {
    std::lock_guard lock(mutex);
    return records;
  }

  std::mutex mutex;
  std::vector<EgressConnection> records;
  std::unique_ptr<Proxy> proxy;
  std::optional<Proxy::Session> session;
  std::uint16_t port = 0;
};

EgressSettings loopback_opened() {
  return {.hosts = {{"up.test", {"127.0.0.1"}}, {"a.wild.test", {"127.0.0.1"}}, {"no.wild.test", {"127.0.0.1"}}},
          .allowed_ranges = {"127.0.0.1/32"}};
}

std::string connect_line(const std::string& authority) {
  return "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n\r\n";
}

}  // namespace

TEST_SUITE("egress proxy") {
  TEST_CASE("an allowed CONNECT relays bytes both ways, and the attempt is recorded with its totals") {
    Upstreams up;
    const auto target = "up.test:" + std::to_string(up.echo_port);
    Fixture f(loopback_opened(), {.allow = {pattern(target)}});
    {
      const auto client = connect_to(f.port);
      send_all(client.get(), connect_line(target));
      CHECK(read_head(client.get()) == "HTTP/1.1 200 Connection established\r\n\r\n");
      send_all(client.get(), "ping");
      CHECK(read_exactly(client.get(), 4) == "ping");
    }
    const auto summary = f.session->finish();
    CHECK(summary.allowed == 1);
    CHECK(summary.refused == 0);
    CHECK(summary.bytes_up == 4);
    CHECK(summary.bytes_down == 4);
    const auto records = f.seen();  // all in before finish() returned
    REQUIRE(records.size() == 1);
    const auto& r = records[0];
    CHECK(r.twin == "twin-test");
    CHECK(r.execution_id == "exec-1");
    CHECK(r.method == "CONNECT");
    CHECK(r.host == "up.test");
    CHECK(r.port == up.echo_port);
    CHECK(r.address == "127.0.0.1");
    CHECK(r.allowed);
    CHECK(r.rule == "egress.allow_domains[" + target + "]");
    CHECK(r.bytes_up == 4);
    CHECK(r.bytes_down == 4);
    CHECK(f.session->finish() == summary);  // later calls: the same totals
  }

  TEST_CASE("a forwarded plain-HTTP request reaches the upstream in origin form and its answer comes back") {
    Upstreams up;
    const auto authority = "up.test:" + std::to_string(up.http_port);
    Fixture f(loopback_opened(), {.allow = {pattern(authority)}});
    const auto client = connect_to(f.port);
    send_all(client.get(), "GET http://" + authority + "/page?q=1 HTTP/1.1\r\nHost: elsewhere.test\r\n"
                           "Proxy-Authorization: Basic c2VjcmV0\r\nUser-Agent: test\r\n\r\n");
    const auto answer = read_to_end(client.get());
    CHECK(answer.starts_with("HTTP/1.1 200 OK\r\n"));
    CHECK(answer.ends_with("\r\n\r\nhello"));
    const auto heads = up.heads();
    REQUIRE(heads.size() == 1);
    CHECK(heads[0].starts_with("GET /page?q=1 HTTP/1.1\r\n"));
    CHECK(heads[0].find("Host: " + authority + "\r\n") != std::string::npos);
    CHECK(heads[0].find("User-Agent: test\r\n") != std::string::npos);
    CHECK(heads[0].find("Proxy-Authorization") == std::string::npos);
    CHECK(heads[0].find("elsewhere") == std::string::npos);
    const auto summary = f.session->finish();
    CHECK(summary.allowed == 1);
    CHECK(summary.bytes_down == answer.size());
    REQUIRE(f.seen().size() == 1);
    CHECK(f.seen()[0].method == "GET");
  }

  TEST_CASE("refused attempts get an answer that names the rule, and each is recorded") {
    Upstreams up;
    const auto port = std::to_string(up.echo_port);
    auto settings = loopback_opened();
    settings.hosts["closed.test"] = {"127.0.0.1"};
    Fixture f(settings, {.allow = {pattern("up.test:" + port), pattern("*.wild.test:" + port),
                                   pattern("closed.test:" + std::to_string(up.closed_port))},
                         .deny = {pattern("no.wild.test")}});
    struct Row {
      std::string authority;
      const char* status;
      std::string rule;
    };
    for (const Row& row : {
             Row{"other.test:" + port, "403", "egress.not_allowed"},
             Row{"wild.test:" + port, "403", "egress.not_allowed"},  // the wildcard's own suffix
             Row{"no.wild.test:" + port, "403", "egress.deny_domains[no.wild.test]"},
             Row{"127.0.0.1:" + port, "403", "egress.not_allowed"},  // an address literal
             Row{"up.test:1", "403", "egress.not_allowed"},          // a port the pattern does not name
             Row{"closed.test:" + std::to_string(up.closed_port), "502", "egress.connect_failed"},
         }) {
      CAPTURE(row.authority);
      const auto client = connect_to(f.port);
      send_all(client.get(), connect_line(row.authority));
      const auto answer = read_to_end(client.get());
      CHECK(answer.starts_with(std::string("HTTP/1.1 ") + row.status));
      CHECK(answer.find("X-Pagi-Egress-Rule: " + row.rule) != std::string::npos);
      CHECK(answer.find("pagi-exec egress proxy: " + row.rule + ": ") != std::string::npos);
    }
    CHECK(f.session->finish().refused == 6);
    const auto records = f.seen();
    REQUIRE(records.size() == 6);
    CHECK(records[2].rule == "egress.deny_domains[no.wild.test]");
    CHECK(records[2].host == "no.wild.test");
    CHECK(records[5].address == "127.0.0.1");
    for (const auto& r : records) CHECK_FALSE(r.allowed);
  }

  TEST_CASE("an allowed name that resolves to loopback is refused: the address is checked, not the name") {
    Upstreams up;
    const auto target = "up.test:" + std::to_string(up.echo_port);
    Fixture f({.hosts = {{"up.test", {"127.0.0.1"}}}}, {.allow = {pattern(target)}});  // no range opened
    const auto client = connect_to(f.port);
    send_all(client.get(), connect_line(target));
    const auto answer = read_to_end(client.get());
    CHECK(answer.starts_with("HTTP/1.1 403"));
    CHECK(answer.find("egress.blocked_address[127.0.0.0/8]") != std::string::npos);
    CHECK(answer.find("TOOLS_EGRESS_ALLOW_RANGES") != std::string::npos);
    (void)f.session->finish();
    REQUIRE(f.seen().size() == 1);
    CHECK(f.seen()[0].address == "127.0.0.1");
    CHECK(f.seen()[0].rule == "egress.blocked_address[127.0.0.0/8]");
  }

  TEST_CASE("heads the proxy cannot read are answered and recorded as bad requests") {
    Upstreams up;
    Fixture f(loopback_opened(), {.allow = {pattern("up.test")}});
    {
      const auto client = connect_to(f.port);
      send_all(client.get(), "HELLO THERE\r\n\r\n");
      CHECK(read_to_end(client.get()).starts_with("HTTP/1.1 400"));
    }
    {
      const auto client = connect_to(f.port);
      send_all(client.get(), "GET http://up.test/ HTTP/1.1\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n");
      CHECK(read_to_end(client.get()).starts_with("HTTP/1.1 431"));
    }
    (void)f.session->finish();
    const auto records = f.seen();
    REQUIRE(records.size() == 2);
    for (const auto& r : records) CHECK(r.rule == "egress.bad_request");
  }

  TEST_CASE("one connection past the run's limit is refused with 429") {
    Upstreams up;
    const auto target = "up.test:" + std::to_string(up.echo_port);
    auto settings = loopback_opened();
    settings.max_connections_per_run = 2;
    Fixture f(settings, {.allow = {pattern(target)}});
    std::vector<unique_fd> open;
    for (int i = 0; i < 2; ++i) {
      open.push_back(connect_to(f.port));
      send_all(open.back().get(), connect_line(target));
      REQUIRE(read_head(open.back().get()).starts_with("HTTP/1.1 200"));
    }
    const auto third = connect_to(f.port);
    send_all(third.get(), connect_line(target));
    const auto answer = read_to_end(third.get());
    CHECK(answer.starts_with("HTTP/1.1 429"));
    CHECK(answer.find("egress.connection_limit") != std::string::npos);
    open.clear();
    const auto summary = f.session->finish();
    CHECK(summary.allowed == 2);
    CHECK(summary.refused == 1);
  }

  TEST_CASE("past the proxy's total limit a connection is closed unread, so a flood cannot grow its memory") {
    Upstreams up;
    auto settings = loopback_opened();
    settings.max_connections_total = 4;
    Fixture f(settings, {.allow = {pattern("up.test")}});
    std::vector<unique_fd> idle;
    for (int i = 0; i < 4; ++i) idle.push_back(connect_to(f.port));  // accepted in order, heads never sent
    const auto fifth = connect_to(f.port);
    char c = 0;
    CHECK(recv(fifth.get(), &c, 1, 0) == 0);  // closed at once; the idle ones wait for their heads
    const auto summary = f.session->finish();  // closes the idle ones: the run ended
    CHECK(summary.refused == 5);
    const auto records = f.seen();
    REQUIRE(records.size() == 5);
    CHECK(std::count_if(records.begin(), records.end(),
                        [](const EgressConnection& r) { return r.rule == "egress.connection_limit"; }) == 1);
    CHECK(std::count_if(records.begin(), records.end(),
                        [](const EgressConnection& r) { return r.rule == "egress.run_ended"; }) == 4);
    for (auto& fd : idle) CHECK(recv(fd.get(), &c, 1, 0) <= 0);
  }

  TEST_CASE("one run's connections that never send a head cannot take the proxy from the other runs") {
    Upstreams up;
    const auto target = "up.test:" + std::to_string(up.echo_port);
    auto settings = loopback_opened();
    settings.max_connections_total = 4;
    settings.max_connections_per_run = 2;
    Fixture f(settings, {.allow = {pattern(target)}});
    // This run opens as many connections as the proxy holds in all, and sends nothing.
    std::vector<unique_fd> idle;
    for (int i = 0; i < 4; ++i) idle.push_back(connect_to(f.port));
    char c = 0;
    // Past its own 2, they are closed at once, unread; its first 2 wait for their heads.
    CHECK(recv(idle[2].get(), &c, 1, 0) == 0);
    CHECK(recv(idle[3].get(), &c, 1, 0) == 0);
    // So another run still connects.
    std::uint16_t other_port = 0;
    auto other = f.proxy->serve(listener(other_port), {.allow = {pattern(target)}}, "twin-other", "exec-2");
    REQUIRE(other.has_value());
    const auto client = connect_to(other_port);
    send_all(client.get(), connect_line(target));
    CHECK(read_head(client.get()).starts_with("HTTP/1.1 200"));
    // ... while the first run's first 2 still hold their places (not freed by the head timeout).
    for (std::size_t i = 0; i < 2; ++i) {
      errno = 0;
      CHECK(recv(idle[i].get(), &c, 1, MSG_DONTWAIT) == -1);
      CHECK(errno == EAGAIN);
    }
    idle.clear();
    CHECK(other->finish().allowed == 1);
    (void)f.session->finish();  // every record of the run is in once it returns
    const auto records = f.seen();
    CHECK(std::count_if(records.begin(), records.end(), [](const EgressConnection& r) {
            return r.rule == "egress.connection_limit" && r.reason.find("waiting to send a request head") != std::string::npos;
          }) == 2);
  }

  TEST_CASE("finish() closes the run's open connections and returns once each is recorded") {
    Upstreams up;
    const auto target = "up.test:" + std::to_string(up.echo_port);
    Fixture f(loopback_opened(), {.allow = {pattern(target)}});
    const auto client = connect_to(f.port);
    send_all(client.get(), connect_line(target));
    REQUIRE(read_head(client.get()).starts_with("HTTP/1.1 200"));
    send_all(client.get(), "still here");
    REQUIRE(read_exactly(client.get(), 10) == "still here");
    const auto summary = f.session->finish();  // the client never closed
    CHECK(summary.allowed == 1);
    CHECK(f.seen().size() == 1);
    char c = 0;
    CHECK(recv(client.get(), &c, 1, 0) <= 0);  // the proxy closed it
    // The listener is closed too: a new connection is refused by the kernel.
    unique_fd late(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(f.port);
    CHECK(connect(late.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0);
  }

  TEST_CASE("a run's bandwidth limit holds its transfer to the rate") {
    Upstreams up;
    const auto target = "up.test:" + std::to_string(up.echo_port);
    auto settings = loopback_opened();
    settings.bytes_per_second_per_run = 128 * 1024;
    Fixture f(settings, {.allow = {pattern(target)}});
    const auto client = connect_to(f.port);
    send_all(client.get(), connect_line(target));
    REQUIRE(read_head(client.get()).starts_with("HTTP/1.1 200"));
    const std::string chunk(16 * 1024, 'x');
    const auto started = std::chrono::steady_clock::now();
    for (int i = 0; i < 8; ++i) {  // 128 KiB up and 128 KiB down: 2 s at the rate
      send_all(client.get(), chunk);
      REQUIRE(read_exactly(client.get(), chunk.size()) == chunk);
    }
    const auto took = std::chrono::steady_clock::now() - started;
    // A lower bound only: a slow machine makes it slower, never faster.
    CHECK(took >= std::chrono::milliseconds(1500));
    CHECK(f.session->finish().bytes_down == 128 * 1024);
  }

  TEST_CASE("bad settings are refused when the proxy is made") {
    const auto bad_range = Proxy::make({.allowed_ranges = {"10.0.0.1/8"}}, {});
    REQUIRE_FALSE(bad_range.has_value());
    CHECK(bad_range.error().message().find("TOOLS_EGRESS_ALLOW_RANGES") != std::string::npos);
    const auto bad_host = Proxy::make({.hosts = {{"x.test", {"not-an-address"}}}}, {});
    REQUIRE_FALSE(bad_host.has_value());
    CHECK(bad_host.error().message().find("TOOLS_EGRESS_HOSTS") != std::string::npos);
  }
}
