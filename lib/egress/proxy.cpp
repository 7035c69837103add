// SPDX-License-Identifier: Apache-2.0
// The egress proxy's event loop: one thread runs Boost.Asio coroutines, one accept loop per
// egress run (on the listener made inside that run's namespace) and one coroutine per
// connection: read the head, decide, resolve, check the address, connect, relay, record.
// gcc 12 under AddressSanitizer reports -Wmaybe-uninitialized inside Beast's parser (a
// boost::optional that only the instrumentation's extra paths seem to leave unset), and the
// sanitized build (scripts/sanitize.sh) turns warnings into errors.
#if defined(__SANITIZE_ADDRESS__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "egress/proxy.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <condition_variable>
#include <deque>
#include <list>
#include <mutex>
#include <thread>

#include "egress/address_policy.hpp"
#include "egress/http_messages.hpp"

namespace pagi_exec::egress {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t head_limit = 16 * 1024;          // a request head larger than this is refused
constexpr std::size_t relay_chunk = 16 * 1024;         // per direction and connection, at first
constexpr std::size_t bulk_chunk = 64 * 1024;          // once a read fills the first: a bulk transfer
constexpr std::chrono::seconds head_timeout{10};       // a client that sends no head in time is closed
constexpr std::chrono::seconds answer_timeout{5};      // a client that does not read our answer in time
constexpr std::chrono::milliseconds bandwidth_burst{50};  // bytes a run may send ahead of its rate
constexpr std::size_t max_unrecorded = 4096;  // records waiting for the sink; past it no run accepts

}  // namespace

struct Proxy::Impl {
  Impl(ProxySettings s, ConnectionSink k, AddressPolicy a)
      : settings(std::move(s)), sink(std::move(k)), addresses(std::move(a)) {}

  const ProxySettings settings;
  const ConnectionSink sink;
  const AddressPolicy addresses;
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
  std::thread thread;

  // The io thread's alone.
  std::size_t open_connections = 0;           // across all runs: bounded by max_connections_total
  std::list<std::weak_ptr<RunState>> runs{};  // for ~Proxy, which closes them all

  std::mutex mutex;  // guards `stopped` against serve() and finish() on other threads
  bool stopped = false;

  // Records go to the sink on a thread of their own, so that a slow sink (the audit log's fsync)
  // never stalls the relays of every run. Each queued record keeps its run's finish() waiting.
  void record(std::shared_ptr<RunState> run, ConnectionRecord record);
  [[nodiscard]] std::size_t unrecorded() {
    std::lock_guard lock(queue_mutex);
    return queue.size();
  }
  void stop_recording() {
    {
      std::lock_guard lock(queue_mutex);
      queue_closing = true;
    }
    queue_changed.notify_all();
    if (recorder.joinable()) recorder.join();
  }
  void deliver_records();

  std::mutex queue_mutex;
  std::condition_variable queue_changed;
  std::deque<std::pair<std::shared_ptr<RunState>, ConnectionRecord>> queue;
  bool queue_closing = false;
  std::thread recorder;
};

/// One client connection: everything that must be closed or cancelled when it ends.
struct Connection : std::enable_shared_from_this<Connection> {
  explicit Connection(tcp::socket socket)
      : client(std::move(socket)), upstream(client.get_executor()), timer(client.get_executor()),
        resolver(client.get_executor()), throttle_up(client.get_executor()), throttle_down(client.get_executor()) {}

  void close() {
    boost::system::error_code ignored;
    client.close(ignored);
    upstream.close(ignored);
    timer.cancel();
    resolver.cancel();
    throttle_up.cancel();
    throttle_down.cancel();
  }

  // Closes both sockets when `after` passes before disarm(): the pending operation then fails.
  void arm(Clock::duration after) {
    timed_out = false;
    timer.expires_after(after);
    // The generation tells a wait that fired as the operation completed from one still pending.
    timer.async_wait([this, self = weak_from_this(), armed = ++generation](const boost::system::error_code& ec) {
      if (ec || self.expired() || armed != generation) return;
      timed_out = true;
      boost::system::error_code ignored;
      client.close(ignored);
      upstream.close(ignored);
    });
  }
  void disarm() {
    ++generation;
    timer.cancel();
  }

  tcp::socket client;
  tcp::socket upstream;
  asio::steady_timer timer;
  tcp::resolver resolver;
  asio::steady_timer throttle_up, throttle_down;
  bool timed_out = false;
  std::uint64_t generation = 0;
};

struct RunState {
  RunState(std::shared_ptr<Proxy::Impl> p, EgressRules r, std::string t, std::string e)
      : proxy(std::move(p)), rules(std::move(r)), twin(std::move(t)), execution_id(std::move(e)), acceptor(proxy->io) {}

  // On the io thread: no new connections, every open one closed (their coroutines then record).
  void close_all() {
    closing = true;
    boost::system::error_code ignored;
    acceptor.close(ignored);
    for (const auto& connection : open) connection->close();
  }

  // Waits until `bytes` more fit in the run's bandwidth (a token bucket refilled at the rate).
  asio::awaitable<void> throttle(asio::steady_timer& timer, std::size_t bytes) {
    const auto rate = proxy->settings.bytes_per_second_per_run;
    if (rate == 0) co_return;
    const auto now = Clock::now();
    next_free = std::max(next_free, now) + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                                               static_cast<double>(bytes) / static_cast<double>(rate)));
    if (next_free - now > bandwidth_burst) {
      timer.expires_at(next_free - bandwidth_burst);
      (void)co_await timer.async_wait(nothrow);
    }
  }

  void ended(const ConnectionRecord& record) {
    std::lock_guard lock(mutex);
    (record.allowed ? summary.allowed : summary.refused) += 1;
    summary.bytes_up += record.bytes_up;
    summary.bytes_down += record.bytes_down;
  }
  void coroutine_done() {
    std::lock_guard lock(mutex);
    if (--live == 0) all_done.notify_all();
  }

  const std::shared_ptr<Proxy::Impl> proxy;
  const EgressRules rules;
  const std::string twin;
  const std::string execution_id;
  tcp::acceptor acceptor;

  // The io thread's alone.
  std::list<std::shared_ptr<Connection>> open{};
  std::size_t awaiting_head = 0;  // of `open`: accepted, request head not read yet
  bool closing = false;
  Clock::time_point next_free{};

  std::mutex mutex;  // guards what finish() reads on the spawner's thread
  std::condition_variable all_done;
  std::size_t live = 0;  // the accept loop, each connection's coroutine, and each record not yet delivered
  EgressSummary summary{};
  bool finished = false;
};

namespace {

// What one connection attempt does, step by step; `record` is filled as it goes.
class Attempt {
 public:
  Attempt(std::shared_ptr<RunState> run, std::shared_ptr<Connection> connection, ConnectionRecord& record)
      : run_(std::move(run)), c_(std::move(connection)), record_(record), settings_(run_->proxy->settings) {}

  asio::awaitable<void> serve() {
    if (run_->proxy->open_connections > settings_.max_connections_total) {
      // Closed unread: reading its head would spend what the limit is there to bound.
      refuse_quietly("egress.connection_limit", "the proxy has " + std::to_string(settings_.max_connections_total) +
                                                    " connections open, its limit; try again later");
      co_return;
    }
    if (run_->awaiting_head >= settings_.max_connections_per_run) {
      // Connections that send nothing would otherwise hold the proxy's total (above) for the
      // head timeout each: one run could keep every other run from connecting. A real client
      // sends its head at once; closed unread, like the total's.
      refuse_quietly("egress.connection_limit", "this run has " + std::to_string(settings_.max_connections_per_run) +
                                                    " connections waiting to send a request head, its limit");
      co_return;
    }
    beast::flat_buffer buffer;
    http::request_parser<http::empty_body> parser;
    parser.header_limit(head_limit);
    c_->arm(head_timeout);
    const auto [read_error, read] = co_await read_head(buffer, parser);
    c_->disarm();
    (void)read;
    if (read_error) {
      if (read_error == http::error::header_limit) {
        co_await refuse(431, "egress.bad_request", "the request head is larger than " + std::to_string(head_limit) +
                                                       " bytes");
      } else if (c_->timed_out) {
        co_await refuse(408, "egress.bad_request", "no request head within " +
                                                       std::to_string(head_timeout.count()) + " s");
      } else if (read_error == http::error::end_of_stream || read_error == asio::error::eof) {
        refuse_quietly("egress.bad_request", "the client closed the connection before a request");
      } else {
        co_await refuse(400, "egress.bad_request", "not an HTTP request head: " + read_error.message());
      }
      co_return;
    }
    const ProxyRequest request = interpret(parser.get());
    record_.method = request.method;
    record_.host = request.host;
    record_.port = request.port;
    if (request.refused) {
      co_await refuse(request.refused->status, request.refused->rule, request.refused->reason);
      co_return;
    }
    const bool allowed = co_await decide();
    if (!allowed) co_return;
    if (run_->open.size() > settings_.max_connections_per_run) {
      co_await refuse(429, "egress.connection_limit", "this run has " + std::to_string(settings_.max_connections_per_run) +
                                                          " connections open through the proxy, its limit");
      co_return;
    }
    const auto addresses = co_await resolve();
    if (!addresses) co_return;
    const bool connected = co_await connect(*addresses);
    if (!connected) co_return;
    record_.allowed = true;
    co_await open_relay(request, buffer);
  }

 private:
  // The twin's lists: deny wins, then the first allow pattern that covers the host and port.
  asio::awaitable<bool> decide() {
    const auto& rules = run_->rules;
    if (const auto* denied = first_match(rules.deny, record_.host, record_.port, UnsetPort::any_port)) {
      co_await refuse(403, "egress.deny_domains[" + denied->text() + "]",
                      record_.host + ":" + std::to_string(record_.port) + " is in this twin's deny_domains (" +
                          denied->text() + ")");
      co_return false;
    }
    const auto* allowed = first_match(rules.allow, record_.host, record_.port);
    if (allowed == nullptr) {
      co_await refuse(403, "egress.not_allowed",
                      record_.host + ":" + std::to_string(record_.port) + " is not in this twin's allow_domains" +
                          (is_ip_literal(record_.host) ? " (an address literal matches only a pattern naming it)" : ""));
      co_return false;
    }
    record_.rule = "egress.allow_domains[" + allowed->text() + "]";
    co_return true;
  }

  // The addresses the host has, from the operator's pinned names, the literal itself, or DNS.
  asio::awaitable<std::optional<std::vector<Address>>> resolve() {
    std::vector<Address> out;
    if (const auto pinned = settings_.hosts.find(record_.host); pinned != settings_.hosts.end()) {
      for (const auto& text : pinned->second) {
        if (const auto address = parse_address(text)) out.push_back(*address);
      }
    } else if (const auto literal = parse_address(record_.host)) {
      out.push_back(*literal);
    } else {
      c_->arm(settings_.connect_timeout);
      const auto [error, results] =
          co_await c_->resolver.async_resolve(record_.host, std::to_string(record_.port), nothrow);
      c_->disarm();
      if (!error) {
        for (const auto& entry : results) {
          if (const auto address = parse_address(entry.endpoint().address().to_string())) {
            if (std::find(out.begin(), out.end(), *address) == out.end()) out.push_back(*address);
          }
        }
      }
      if (error) {
        co_await refuse(502, "egress.resolve_failed", "could not resolve " + record_.host + ": " + error.message());
        co_return std::nullopt;
      }
    }
    if (out.empty()) {
      co_await refuse(502, "egress.resolve_failed", record_.host + " has no address");
      co_return std::nullopt;
    }
    co_return out;
  }

  // Connects to the first address that is not refused and answers; each refused address is
  // skipped (an allowed name pointing at 127.0.0.1 is DNS rebinding, not a reason to try it).
  asio::awaitable<bool> connect(const std::vector<Address>& addresses) {
    std::string blocked_why;
    std::string last_error;
    for (const auto& address : addresses) {
      if (auto why = run_->proxy->addresses.why_blocked(address)) {
        if (blocked_why.empty()) {
          blocked_why = *why;
          record_.address = address.text();
        }
        continue;
      }
      record_.address = address.text();
      const tcp::endpoint endpoint(asio::ip::make_address(record_.address), record_.port);
      boost::system::error_code ignored;
      c_->upstream.close(ignored);
      c_->arm(settings_.connect_timeout);
      const auto [error] = co_await c_->upstream.async_connect(endpoint, nothrow);
      c_->disarm();
      if (!error) co_return true;
      last_error = c_->timed_out ? "no answer within " + std::to_string(settings_.connect_timeout.count()) + " ms"
                                 : error.message();
      if (run_->closing) break;
    }
    if (!last_error.empty()) {
      co_await refuse(502, "egress.connect_failed", "could not connect to " + record_.host + " (" + record_.address +
                                                        "): " + last_error);
    } else {
      const auto allowing = record_.rule;
      co_await refuse(403, "egress.blocked_address[" + blocked_why + "]",
                      record_.host + " resolves to " + record_.address + ", which the proxy does not connect to (" +
                          blocked_why + "), although " + allowing + " allows the name; an operator can open a range "
                          "with TOOLS_EGRESS_ALLOW_RANGES");
    }
    co_return false;
  }

  // CONNECT: "200" and bytes both ways. Plain HTTP: the rewritten head, then bytes both ways
  // (the upstream was asked to close after its answer, which ends the relay).
  asio::awaitable<void> open_relay(const ProxyRequest& request, beast::flat_buffer& early) {
    // (No co_await inside conditions or operator expressions here: GCC 12 miscompiles some.)
    bool sent = false;
    if (request.tunnel) {
      sent = co_await send(c_->client, asio::buffer(tunnel_established), c_->throttle_down, nullptr);
    } else {
      sent = co_await send(c_->upstream, asio::buffer(request.upstream_head), c_->throttle_up, &record_.bytes_up);
    }
    if (!sent) co_return;
    // Bytes the client sent behind its head (a TLS hello, a request body) go first.
    if (early.size() > 0) {
      sent = co_await send(c_->upstream, early.data(), c_->throttle_up, &record_.bytes_up);
      if (!sent) co_return;
    }
    // Upstream-bound in a coroutine of its own, client-bound here; when the other one ends it
    // sets `up_finished` and cancels `up_done`, whose wait then ends (one thread: no race).
    asio::steady_timer up_done(c_->client.get_executor(), asio::steady_timer::time_point::max());
    bool up_finished = false;
    asio::co_spawn(c_->client.get_executor(), pump(c_->client, c_->upstream, c_->throttle_up, record_.bytes_up),
                   [&up_done, &up_finished, keep = c_](const std::exception_ptr&) {
                     up_finished = true;
                     up_done.cancel();
                   });
    co_await pump(c_->upstream, c_->client, c_->throttle_down, record_.bytes_down);
    if (!up_finished) (void)co_await up_done.async_wait(nothrow);
  }

  asio::awaitable<void> pump(tcp::socket& from, tcp::socket& to, asio::steady_timer& throttle, std::uint64_t& count) {
    std::vector<char> chunk(relay_chunk);
    for (;;) {
      const auto [error, got] = co_await from.async_read_some(asio::buffer(chunk), nothrow);
      if (error) break;
      // A full read is a bulk transfer: larger reads then need fewer system calls per byte
      // (a download through the proxy reaches about 0.45x a direct one, against 0.25x at 16 KiB).
      if (got == chunk.size() && chunk.size() < bulk_chunk) chunk.resize(bulk_chunk);
      const bool sent = co_await send(to, asio::buffer(chunk.data(), got), throttle, &count);
      if (!sent) {
        boost::system::error_code ignored;
        from.close(ignored);  // the other side is gone: so is this one
        co_return;
      }
    }
    // End of stream (or this side failed): pass the half-close on, let the other way finish.
    boost::system::error_code ignored;
    to.shutdown(tcp::socket::shutdown_send, ignored);
  }

  asio::awaitable<bool> send(tcp::socket& to, asio::const_buffer bytes, asio::steady_timer& throttle,
                             std::uint64_t* count) {
    co_await run_->throttle(throttle, bytes.size());
    const auto [error, sent] = co_await asio::async_write(to, bytes, nothrow);
    if (count != nullptr) *count += sent;
    co_return !error;
  }

  // Refuses with an answer the client can read: the status, and the rule and reason as text.
  asio::awaitable<void> refuse(unsigned status, std::string rule, std::string reason) {
    note_refusal(std::move(rule), std::move(reason));
    const std::string answer =
        proxy_answer(status, record_.rule,
                     "pagi-exec egress proxy: " + record_.rule + ": " + record_.reason + "\n");
    c_->arm(answer_timeout);
    (void)co_await asio::async_write(c_->client, asio::buffer(answer), nothrow);
    c_->disarm();
    boost::system::error_code ignored;
    c_->client.shutdown(tcp::socket::shutdown_send, ignored);
  }
  void refuse_quietly(std::string rule, std::string reason) { note_refusal(std::move(rule), std::move(reason)); }

  // The head, counted in the run's awaiting_head while it is awaited (however the wait ends).
  auto read_head(beast::flat_buffer& buffer, http::request_parser<http::empty_body>& parser)
      -> asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> {
    struct Awaiting {
      std::size_t& count;
      explicit Awaiting(std::size_t& n) : count(++n) {}
      ~Awaiting() { --count; }
      Awaiting(const Awaiting&) = delete;
      Awaiting& operator=(const Awaiting&) = delete;
    } awaiting(run_->awaiting_head);
    co_return co_await http::async_read_header(c_->client, buffer, parser, nothrow);
  }

  void note_refusal(std::string rule, std::string reason) {
    record_.allowed = false;
    if (run_->closing) {
      // The run ended while this attempt was under way: that, not the step it broke, is why.
      record_.rule = "egress.run_ended";
      record_.reason = "the run ended before the connection was made";
      return;
    }
    record_.rule = std::move(rule);
    record_.reason = std::move(reason);
  }

  std::shared_ptr<RunState> run_;
  std::shared_ptr<Connection> c_;
  ConnectionRecord& record_;
  const ProxySettings& settings_;
};

asio::awaitable<void> serve_connection(std::shared_ptr<RunState> run, std::shared_ptr<Connection> connection,
                                       std::list<std::shared_ptr<Connection>>::iterator place) {
  auto& proxy = *run->proxy;
  ++proxy.open_connections;
  ConnectionRecord record{.twin = run->twin, .execution_id = run->execution_id, .started = std::chrono::system_clock::now()};
  const auto started = Clock::now();
  try {
    Attempt attempt(run, connection, record);
    co_await attempt.serve();
  } catch (const std::exception& e) {
    record.allowed = false;
    record.rule = "egress.proxy_error";
    record.reason = e.what();
  }
  connection->close();
  run->open.erase(place);
  --proxy.open_connections;
  if (record.rule.empty()) record.rule = "egress.bad_request";
  record.duration = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
  run->ended(record);
  proxy.record(run, std::move(record));
}

asio::awaitable<void> accept_loop(std::shared_ptr<RunState> run) {
  for (;;) {
    // A sink that falls behind holds new connections in the kernel's backlog, not in memory.
    while (run->proxy->unrecorded() > max_unrecorded && !run->closing) {
      asio::steady_timer pause(run->proxy->io, std::chrono::milliseconds(10));
      (void)co_await pause.async_wait(nothrow);
    }
    auto [error, socket] = co_await run->acceptor.async_accept(nothrow);
    if (run->closing) break;
    if (error) {
      if (error == asio::error::operation_aborted || error == asio::error::bad_descriptor) break;
      // Out of descriptors or memory: wait a moment rather than spin; the backlog holds the rest.
      asio::steady_timer pause(run->proxy->io, std::chrono::milliseconds(100));
      (void)co_await pause.async_wait(nothrow);
      continue;
    }
    auto connection = std::make_shared<Connection>(std::move(socket));
    run->open.push_back(connection);
    {
      std::lock_guard lock(run->mutex);
      ++run->live;
    }
    asio::co_spawn(run->proxy->io, serve_connection(run, connection, std::prev(run->open.end())),
                   [run](const std::exception_ptr&) { run->coroutine_done(); });
  }
}

}  // namespace

void Proxy::Impl::record(std::shared_ptr<RunState> run, ConnectionRecord record) {
  {
    std::lock_guard lock(run->mutex);
    ++run->live;
  }
  {
    std::lock_guard lock(queue_mutex);
    queue.emplace_back(std::move(run), std::move(record));
  }
  queue_changed.notify_one();
}

void Proxy::Impl::deliver_records() {
  std::unique_lock lock(queue_mutex);
  for (;;) {
    queue_changed.wait(lock, [&] { return !queue.empty() || queue_closing; });
    if (queue.empty()) return;  // closing, and everything delivered
    auto [run, record] = std::move(queue.front());
    queue.pop_front();
    lock.unlock();
    try {
      if (sink) sink(record);
    } catch (...) {
      // The sink's failure is the sink's to report; the proxy serves on.
    }
    run->coroutine_done();
    run.reset();
    lock.lock();
  }
}

Proxy::Proxy(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<Proxy>> Proxy::make(ProxySettings settings, ConnectionSink sink) {
  auto addresses = AddressPolicy::make(settings.allowed_ranges);
  if (!addresses) return error_of(addresses);
  for (const auto& [name, list] : settings.hosts) {
    for (const auto& text : list) {
      if (!parse_address(text)) {
        return fail(Errc::invalid_config, "TOOLS_EGRESS_HOSTS: '" + text + "' (for " + name + ") is not an address");
      }
    }
  }
  auto impl = std::make_shared<Impl>(std::move(settings), std::move(sink), std::move(*addresses));
  impl->recorder = std::thread([raw = impl.get()] { raw->deliver_records(); });
  impl->thread = std::thread([io = &impl->io] {
    for (;;) {
      try {
        io->run();
        return;
      } catch (...) {
        // A handler threw (out of memory): the loop, and every other run's connections, go on.
      }
    }
  });
  return std::unique_ptr<Proxy>(new Proxy(std::move(impl)));
}

Proxy::~Proxy() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopped = true;
  }
  asio::post(impl_->io, [impl = impl_.get()] {
    for (const auto& weak : impl->runs) {
      if (const auto run = weak.lock()) run->close_all();
    }
  });
  impl_->work.reset();
  impl_->thread.join();     // returns once every coroutine has ended
  impl_->stop_recording();  // after delivering every record
}

Result<Proxy::Session> Proxy::serve(sys::unique_fd listener, EgressRules rules, std::string twin, std::string execution_id) {
  auto run = std::make_shared<RunState>(impl_, std::move(rules), std::move(twin), std::move(execution_id));
  boost::system::error_code error;
  run->acceptor.assign(tcp::v4(), listener.get(), error);
  if (error) return fail(Errc::sandbox_setup, "the egress proxy could not take the run's listener: " + error.message());
  (void)listener.release();  // the acceptor owns it now
  std::lock_guard lock(impl_->mutex);
  if (impl_->stopped) return fail(Errc::sandbox_setup, "the egress proxy is shutting down");
  run->live = 1;  // the accept loop
  asio::post(impl_->io, [run] {
    auto& runs = run->proxy->runs;
    std::erase_if(runs, [](const std::weak_ptr<RunState>& r) { return r.expired(); });
    runs.push_back(run);
    asio::co_spawn(run->proxy->io, accept_loop(run), [run](const std::exception_ptr&) { run->coroutine_done(); });
  });
  return Session(std::move(run));
}

Proxy::Session::Session(std::shared_ptr<RunState> state) : state_(std::move(state)) {}
Proxy::Session::Session(Session&&) noexcept = default;
Proxy::Session& Proxy::Session::operator=(Session&& other) noexcept {
  if (this != &other) {
    (void)finish();
    state_ = std::move(other.state_);
  }
  return *this;
}
Proxy::Session::~Session() { (void)finish(); }

EgressSummary Proxy::Session::finish() {
  if (!state_) return {};
  auto& run = *state_;
  {
    std::unique_lock lock(run.mutex);
    if (run.finished) return run.summary;
  }
  {
    std::lock_guard lock(run.proxy->mutex);
    // A stopped proxy has closed every run and its thread is gone: nothing left to post to.
    if (!run.proxy->stopped) asio::post(run.proxy->io, [state = state_] { state->close_all(); });
  }
  std::unique_lock lock(run.mutex);
  run.all_done.wait(lock, [&] { return run.live == 0; });
  run.finished = true;
  return run.summary;
}

}  // namespace pagi_exec::egress
