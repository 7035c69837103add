// SPDX-License-Identifier: Apache-2.0
// pagi-load: one thread per virtual client, each with its own channel; all connect, warm up, then
// start measuring together behind a barrier, and their exact tallies are merged at the end.
#include <sys/resource.h>

#include <atomic>
#include <barrier>
#include <iostream>
#include <optional>
#include <thread>

#include "options.hpp"
#include "stats.hpp"
#include "workload.hpp"

namespace {

using namespace pagi_load;
using Clock = std::chrono::steady_clock;

constexpr auto connect_timeout = std::chrono::seconds(10);

double cpu_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

std::shared_ptr<grpc::Channel> make_channel(const Options& options, unsigned client) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);  // a flood answered by a server without output caps is large
  if (!options.shared_channel) {
    // Channels with equal arguments share one subchannel, so one connection; a local pool and an
    // argument of its own give each client its own connection, as separate callers would have.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("pagi_load.client", static_cast<int>(client));
  }
  return grpc::CreateCustomChannel(options.target, grpc::InsecureChannelCredentials(), args);
}

// What the clients share. The barrier's completion step runs once per phase, before any client
// goes on, so the times it writes are read after it without further locking.
class Run {
 public:
  explicit Run(const Options& options)
      : options_(options), schedule_(make_schedule(options.mix)), phases_(options.concurrency, Completion{this}) {}

  // One virtual client: connect, warm up, measure. Its samples go to `tallies` only.
  void client(const std::shared_ptr<grpc::Channel>& channel, std::size_t index, Tallies& tallies) {
    Workload workload(channel, options_.calls, options_.stream,
                      std::chrono::milliseconds(static_cast<std::int64_t>(options_.deadline_s * 1000)));
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + connect_timeout)) unreachable_ = true;
    phases_.arrive_and_wait();  // everyone connected: the warm-up clock starts
    if (!unreachable_) {
      for (std::size_t n = index; Clock::now() < warmup_end_; ++n) (void)workload.call(schedule_[n % schedule_.size()]);
    }
    phases_.arrive_and_wait();  // everyone warm: the measured phase starts
    if (unreachable_) return;
    for (;;) {
      if (end_ && Clock::now() >= *end_) return;
      const auto ticket = next_ticket_.fetch_add(1, std::memory_order_relaxed);
      if (options_.requests && ticket >= *options_.requests) return;
      const auto sample = workload.call(schedule_[ticket % schedule_.size()]);
      tallies[static_cast<std::size_t>(sample.kind)].add(sample);
    }
  }

  [[nodiscard]] bool unreachable() const noexcept { return unreachable_; }
  [[nodiscard]] Clock::time_point start() const noexcept { return start_; }
  [[nodiscard]] double cpu_at_start() const noexcept { return cpu_at_start_; }

 private:
  struct Completion {
    Run* run;
    void operator()() noexcept { run->next_phase(); }
  };

  void next_phase() noexcept {
    const auto now = Clock::now();
    if (phase_++ == 0) {
      warmup_end_ = now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options_.warmup_s));
      return;
    }
    start_ = now;
    cpu_at_start_ = cpu_seconds();
    if (options_.duration_s) {
      end_ = now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(*options_.duration_s));
    }
  }

  const Options& options_;
  std::vector<Kind> schedule_;
  std::barrier<Completion> phases_;
  std::atomic<bool> unreachable_{false};
  std::atomic<std::uint64_t> next_ticket_{0};
  int phase_ = 0;
  Clock::time_point warmup_end_{}, start_{};
  std::optional<Clock::time_point> end_;
  double cpu_at_start_ = 0;
};

int drive(const Options& options) {
  Run run(options);
  std::vector<Tallies> tallies(options.concurrency);
  std::shared_ptr<grpc::Channel> shared;
  if (options.shared_channel) shared = make_channel(options, 0);
  std::vector<std::thread> clients;
  clients.reserve(options.concurrency);
  for (unsigned c = 0; c < options.concurrency; ++c) {
    auto channel = shared ? shared : make_channel(options, c);
    clients.emplace_back([&run, &tallies, channel, c] { run.client(channel, c, tallies[c]); });
  }
  for (auto& client : clients) client.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - run.start()).count();
  const double cpu = cpu_seconds() - run.cpu_at_start();
  if (run.unreachable()) {
    std::cerr << "pagi-load: cannot connect to " << options.target << " within " << connect_timeout.count() << " s\n";
    return 1;
  }

  Tallies merged;
  for (const auto& mine : tallies) {
    for (std::size_t k = 0; k < kind_count; ++k) merged[k].merge(mine[k]);
  }
  auto report = make_report(merged, seconds);
  report.target = options.target;
  report.concurrency = options.concurrency;
  report.stream = options.stream;
  report.client_cpu_seconds = cpu;
  if (!options.quiet) print_report(report, std::cout);
  if (!options.json_path.empty() && !write_json(report, options.json_path)) return 1;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const auto parsed = pagi_load::parse_options(argc, argv);
  if (const auto* exit_code = std::get_if<int>(&parsed)) return *exit_code;
  return drive(std::get<pagi_load::Options>(parsed));
}
