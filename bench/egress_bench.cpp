// SPDX-License-Identifier: Apache-2.0
// egress_bench: what the egress proxy costs a connection, against the same connection made
// directly, on loopback.
//
//   egress_bench [--rounds N] [--mib M] [--json FILE]
//
// A source server of this program's listens on 127.0.0.1. "connect" is the time from connect()
// to the first byte of an answer (direct: connect, send one byte, read it back; proxied: connect
// to the proxy, CONNECT, read the 200, send one byte, read it back). "download" reads M MiB
// (default 100) that the source writes as fast as it can, direct and through a CONNECT tunnel.
// Direct and proxied take turns each round, so machine noise hits both alike. The proxy is the
// server's own (lib/egress), serving one run's listener on loopback; in the server that listener
// sits inside the run's namespace, which changes nothing on the data path.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "egress/proxy.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using pagi_exec::sys::unique_fd;
constexpr std::size_t mib = 1024 * 1024;

[[noreturn]] void die(const std::string& what) {
  std::perror(what.c_str());
  std::exit(1);
}

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  return address;
}

unique_fd listen_loopback(std::uint16_t& port) {
  unique_fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  auto address = loopback(0);
  if (!fd || bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || listen(fd.get(), 128) != 0) {
    die("listen");
  }
  socklen_t size = sizeof address;
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &size);
  port = ntohs(address.sin_port);
  return fd;
}

unique_fd dial(std::uint16_t port) {
  unique_fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const int one = 1;
  setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const auto address = loopback(port);
  if (!fd || connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) die("connect");
  return fd;
}

void send_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const auto n = send(fd, data, size, MSG_NOSIGNAL);
    if (n <= 0) die("send");
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

void read_exactly(int fd, char* into, std::size_t size) {
  while (size > 0) {
    const auto n = recv(fd, into, size, 0);
    if (n <= 0) die("recv");
    into += n;
    size -= static_cast<std::size_t>(n);
  }
}

void expect_tunnel(int fd, std::uint16_t source_port) {
  const std::string ask = "CONNECT source.test:" + std::to_string(source_port) + " HTTP/1.1\r\n\r\n";
  send_all(fd, ask.data(), ask.size());
  std::string head;
  char c = 0;
  while (!head.ends_with("\r\n\r\n") && recv(fd, &c, 1, 0) == 1) head += c;
  if (!head.starts_with("HTTP/1.1 200")) {
    std::fprintf(stderr, "egress_bench: the proxy refused the tunnel: %s\n", head.c_str());
    std::exit(1);
  }
}

// The source: the first byte a client sends picks the work: 'p' answers one byte (ping),
// 'd' writes the requested number of MiB.
class Source {
 public:
  explicit Source(std::size_t download_bytes) : bytes_(download_bytes) {
    fd_ = listen_loopback(port);
    thread_ = std::thread([this] {
      for (int client; (client = accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC)) >= 0;) {
        std::thread([this, client] { serve(client); }).detach();
      }
    });
  }
  ~Source() {
    shutdown(fd_.get(), SHUT_RDWR);
    thread_.join();
  }
  std::uint16_t port = 0;

 private:
  void serve(int client) {
    const int one = 1;
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char kind = 0;
    if (recv(client, &kind, 1, 0) == 1) {
      if (kind == 'p') {
        (void)send(client, "p", 1, MSG_NOSIGNAL);
      } else {
        const std::vector<char> chunk(256 * 1024, 'x');
        for (std::size_t left = bytes_; left > 0;) {
          const auto n = send(client, chunk.data(), std::min(left, chunk.size()), MSG_NOSIGNAL);
          if (n <= 0) break;
          left -= static_cast<std::size_t>(n);
        }
      }
    }
    char drain[64];
    while (recv(client, drain, sizeof drain, 0) > 0) {
    }
    close(client);
  }
  std::size_t bytes_;
  unique_fd fd_;
  std::thread thread_;
};

double ping(std::uint16_t port, std::optional<std::uint16_t> source_port) {
  const auto start = Clock::now();
  const auto fd = dial(port);
  if (source_port) expect_tunnel(fd.get(), *source_port);
  char c = 'p';
  send_all(fd.get(), &c, 1);
  read_exactly(fd.get(), &c, 1);
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

double download(std::uint16_t port, std::optional<std::uint16_t> source_port, std::size_t bytes) {
  const auto start = Clock::now();
  const auto fd = dial(port);
  if (source_port) expect_tunnel(fd.get(), *source_port);
  char c = 'd';
  send_all(fd.get(), &c, 1);
  std::vector<char> buffer(256 * 1024);
  for (std::size_t left = bytes; left > 0;) {
    const auto n = recv(fd.get(), buffer.data(), std::min(left, buffer.size()), 0);
    if (n <= 0) die("download");
    left -= static_cast<std::size_t>(n);
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return static_cast<double>(bytes) / static_cast<double>(mib) / seconds;
}

// This process's resident memory, in KiB (the proxy runs in it).
long rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmRSS:")) return std::atol(line.c_str() + 6);
  }
  return -1;
}

// Opens `count` connections that each send half a head and wait, as a flood would; returns the
// growth of resident memory (KiB) once the proxy has taken them all in.
long flood(std::uint16_t proxy_port, int count) {
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  setrlimit(RLIMIT_NOFILE, &files);
  const long before = rss_kib();
  std::vector<unique_fd> open;
  for (int i = 0; i < count; ++i) {
    open.push_back(dial(proxy_port));
    send_all(open.back().get(), "CONNECT source.test:", 20);
  }
  // A last full request proves the proxy has read the ones before it (one thread, in order).
  const auto last = dial(proxy_port);
  send_all(last.get(), "GET / HTTP/1.1\r\n\r\n", 18);
  char c = 0;
  (void)recv(last.get(), &c, 1, 0);
  return rss_kib() - before;
}

double percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  return values[static_cast<std::size_t>(p * static_cast<double>(values.size() - 1))];
}

double median(std::vector<double> values) { return percentile(std::move(values), 0.5); }

}  // namespace

int main(int argc, char** argv) {
  int rounds = 500;
  std::size_t download_mib = 100;
  int download_rounds = 3;
  int flood_connections = 2000;
  std::string json_path;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--rounds" && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--mib" && i + 1 < argc) {
      download_mib = static_cast<std::size_t>(std::max(1, std::atoi(argv[++i])));
    } else if (arg == "--downloads" && i + 1 < argc) {
      download_rounds = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--flood" && i + 1 < argc) {
      flood_connections = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else {
      std::printf("usage: egress_bench [--rounds N] [--mib M] [--downloads K] [--flood F] [--json FILE]\n"
                  "  the added latency of one connection through the egress proxy (N rounds, default 500)\n"
                  "  and the throughput of an M MiB download through it (default 100, K times, default 3),\n"
                  "  each against the same done directly on loopback; then the memory F idle connections\n"
                  "  (default 2000) add to the process the proxy runs in\n");
      return arg == "--help" || arg == "-h" ? 0 : 2;
    }
  }

  Source source(download_mib * mib);
  std::uint16_t proxy_port = 0;
  auto listener = listen_loopback(proxy_port);
  auto proxy = pagi_exec::egress::Proxy::make({.hosts = {{"source.test", {"127.0.0.1"}}},
                                               .allowed_ranges = {"127.0.0.1/32"}},
                                              {});
  if (!proxy) {
    std::fprintf(stderr, "egress_bench: %s\n", proxy.error().message().c_str());
    return 1;
  }
  auto session = (*proxy)->serve(std::move(listener),
                                 {.allow = {pagi_exec::parse_domain_pattern("source.test:" +
                                                                           std::to_string(source.port)).value()}},
                                 "twin-bench", "bench");
  if (!session) {
    std::fprintf(stderr, "egress_bench: %s\n", session.error().message().c_str());
    return 1;
  }

  std::vector<double> direct_us, proxied_us, direct_mibs, proxied_mibs;
  for (int i = 0; i < rounds; ++i) {
    direct_us.push_back(ping(source.port, std::nullopt));
    proxied_us.push_back(ping(proxy_port, source.port));
  }
  for (int i = 0; i < download_rounds; ++i) {
    direct_mibs.push_back(download(source.port, std::nullopt, download_mib * mib));
    proxied_mibs.push_back(download(proxy_port, source.port, download_mib * mib));
  }
  const long flood_kib = flood(proxy_port, flood_connections);
  const auto totals = session->finish();

  const double direct_p50 = percentile(direct_us, 0.5), proxied_p50 = percentile(proxied_us, 0.5);
  std::printf("connection to first byte, %d rounds:\n", rounds);
  std::printf("  direct   p50 %8.1f us  p99 %8.1f us\n", direct_p50, percentile(direct_us, 0.99));
  std::printf("  proxied  p50 %8.1f us  p99 %8.1f us  (+%.1f us, %.2fx)\n", proxied_p50, percentile(proxied_us, 0.99),
              proxied_p50 - direct_p50, proxied_p50 / direct_p50);
  std::printf("download of %zu MiB, median of %d:\n", download_mib, download_rounds);
  std::printf("  direct   %8.0f MiB/s\n", median(direct_mibs));
  std::printf("  proxied  %8.0f MiB/s  (%.2fx)\n", median(proxied_mibs), median(proxied_mibs) / median(direct_mibs));
  std::printf("%d idle connections at once: resident memory grew by %.1f MiB (the proxy holds at most %zu)\n",
              flood_connections, static_cast<double>(flood_kib) / 1024.0,
              pagi_exec::EgressSettings{}.max_connections_total);
  std::printf("the proxy recorded %u connections allowed, %u refused, %llu bytes down\n", totals.allowed,
              totals.refused, static_cast<unsigned long long>(totals.bytes_down));

  if (!json_path.empty()) {
    const nlohmann::json report = {
        {"rounds", rounds},
        {"download_mib", download_mib},
        {"connect_direct_p50_us", direct_p50},
        {"connect_direct_p99_us", percentile(direct_us, 0.99)},
        {"connect_proxied_p50_us", proxied_p50},
        {"connect_proxied_p99_us", percentile(proxied_us, 0.99)},
        {"download_direct_mib_s", median(direct_mibs)},
        {"download_proxied_mib_s", median(proxied_mibs)},
        {"connections_recorded", totals.allowed},
        {"flood_connections", flood_connections},
        {"flood_rss_growth_kib", flood_kib},
    };
    std::ofstream(json_path) << report.dump(2) << "\n";
  }
  return 0;
}
