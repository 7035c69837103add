// SPDX-License-Identifier: Apache-2.0
// The metrics listener on cpp-httplib (Debian's libcpp-httplib-dev).
#include "metrics_http.hpp"

#include <condition_variable>
#include <deque>
#include <functional>
#include <iostream>
#include <mutex>
#include <vector>

#include <httplib.h>
#include <sys/socket.h>

#include "config.hpp"
#include "log.hpp"
#include "metrics.hpp"

namespace tools_server {
namespace {

constexpr const char* content_type = "text/plain; version=0.0.4; charset=utf-8";

// httplib's own ThreadPool (0.11) queues without bound; this one runs a task on the accepting
// thread when `max_queued` wait already, which stops the accepting (see metrics_threads).
class BoundedPool final : public httplib::TaskQueue {
 public:
  BoundedPool(std::size_t threads, std::size_t max_queued) : max_queued_(max_queued) {
    for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
  }
  ~BoundedPool() override = default;
  BoundedPool(const BoundedPool&) = delete;
  BoundedPool& operator=(const BoundedPool&) = delete;

  void enqueue(std::function<void()> task) override {
    std::unique_lock lock(mutex_);
    if (tasks_.size() >= max_queued_) {
      lock.unlock();
      task();
      return;
    }
    tasks_.push_back(std::move(task));
    lock.unlock();
    ready_.notify_one();
  }

  // httplib calls this once the listening socket is closed: the queued tasks still run.
  void shutdown() override {
    {
      std::lock_guard lock(mutex_);
      closing_ = true;
    }
    ready_.notify_all();
    for (auto& thread : threads_) thread.join();
  }

 private:
  void work() {
    for (;;) {
      std::unique_lock lock(mutex_);
      ready_.wait(lock, [this] { return closing_ || !tasks_.empty(); });
      if (tasks_.empty()) return;  // closing, nothing left
      auto task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
    }
  }

  std::size_t max_queued_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> tasks_;
  bool closing_ = false;
  std::vector<std::thread> threads_;
};

// httplib sets SO_REUSEPORT by default, with which a second listener on a busy port would start
// and share it. SO_REUSEADDR alone still lets a restart bind over its old TIME_WAIT connections.
void reuse_address_only(int sock) {
  int yes = 1;
  ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
}

}  // namespace

std::string render_metrics(const pagi_exec::Host& host) {
  const auto health = host.health();
  std::string text;
  server_metrics().render(text, health.admission ? health.admission->usage().running : 0, health.policy_revision);
  return text;
}

pagi_exec::Result<std::unique_ptr<MetricsHttp>> MetricsHttp::start(const std::string& address,
                                                                   const pagi_exec::Host& host) {
  if (address.empty()) return nullptr;
  const auto colon = address.rfind(':');
  std::string name = address.substr(0, colon);
  const int port = std::stoi(address.substr(colon + 1));  // config.cpp checked it: 0-65535
  if (name.size() > 2 && name.front() == '[' && name.back() == ']') name = name.substr(1, name.size() - 2);

  std::unique_ptr<MetricsHttp> http(new MetricsHttp());
  http->address_ = address;
  http->server_ = std::make_unique<httplib::Server>();
  auto& server = *http->server_;
  server.new_task_queue = [] { return new BoundedPool(metrics_threads, metrics_queue); };
  server.set_socket_options(reuse_address_only);
  // A scrape is one small request: a client that dawdles does not keep a thread for long.
  server.set_read_timeout(5, 0);
  server.set_write_timeout(5, 0);
  server.set_keep_alive_timeout(5);
  server.set_payload_max_length(4096);
  server.Get("/metrics", [&host](const httplib::Request&, httplib::Response& response) {
    response.set_content(render_metrics(host), content_type);
  });
  server.set_error_handler([](const httplib::Request&, httplib::Response& response) {
    if (response.status == 404) response.set_content("not found: metrics are at /metrics\n", "text/plain");
  });

  const int bound = port == 0 ? server.bind_to_any_port(name) : (server.bind_to_port(name, port) ? port : -1);
  if (bound <= 0) {
    return pagi_exec::fail(pagi_exec::Errc::io, "TOOLS_METRICS_ADDR / --metrics-addr: cannot listen on " + address +
                                                    " (address in use, or not permitted?)");
  }
  http->url_ = "http://" + address.substr(0, colon) + ":" + std::to_string(bound) + "/metrics";
  http->thread_ = std::thread([raw = http.get()] {
    (void)raw->server_->listen_after_bind();
    raw->returned_ = true;
  });
  return http;
}

void MetricsHttp::announce() const {
  std::cout << "metrics on " << url_ << std::endl;
  if (!is_loopback(address_)) {
    log(LogLevel::warn, "metrics on " + url_ + " are reachable beyond loopback (TOOLS_METRICS_ADDR): they hold no "
                        "twin data, but show the server's load and policy revision to whoever reaches them");
  }
  log(LogLevel::info, "metrics on " + url_);
}

// httplib's stop() does nothing before the loop runs: wait until it runs (or has ended at once).
MetricsHttp::~MetricsHttp() {
  if (!thread_.joinable()) return;  // it never bound
  while (!server_->is_running() && !returned_) std::this_thread::yield();
  server_->stop();
  thread_.join();
}

}  // namespace tools_server
