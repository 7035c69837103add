// SPDX-License-Identifier: Apache-2.0
// Loopback-only network namespaces of native executions (see network_namespaces(7)).
//
// Two twins' runs must not reach each other's listeners on 127.0.0.1, nor share a port with
// SO_REUSEPORT, so no namespace ever serves two twins. A twin's own runs may share one in turn:
// once a run's processes are gone nothing of it can act, and a namespace still holding any of
// its sockets (TIME_WAIT included) is dropped rather than kept. Creating one costs ~0.7 ms of
// kernel work and tearing it down as much again in a kworker (bench/netns_bench), so a
// background thread prepares fresh ones and checks the ones given back.
#include "sys/netns.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <thread>

namespace pagi_exec::sys {
namespace {

// On the calling thread only: unshare(CLONE_NEWNET) moves this thread (not the process) into a
// new namespace; we open it through /proc/thread-self, bring up lo and return home. Nothing
// else runs on the pool's thread, so no other code ever sees the detour.
Result<unique_fd> make_on_this_thread(int home) {
  if (::unshare(CLONE_NEWNET) != 0) return fail(Errc::sandbox_setup, "unshare(CLONE_NEWNET)", errno);
  unique_fd ns(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  const int open_errno = errno;
  const int up_errno = ns ? bring_up_loopback_in_child() : 0;
  if (::setns(home, CLONE_NEWNET) != 0) {
    return fail(Errc::sandbox_setup, "return to the server's network namespace", errno);
  }
  if (!ns) return fail(Errc::sandbox_setup, "open a new network namespace", open_errno);
  if (up_errno != 0) return fail(Errc::sandbox_setup, "bring up lo in a new network namespace", up_errno);
  return ns;
}

// "sockets: used N" counts every socket of the reading thread's namespace, of any family;
// "TCP: ... tw N" its connections in TIME_WAIT, which are no longer sockets.
bool nothing_left(const std::string& sockstat) {
  const auto number_after = [&](const std::string& key) -> long {
    const auto at = sockstat.find(key);
    return at == std::string::npos ? -1 : std::strtol(sockstat.c_str() + at + key.size(), nullptr, 10);
  };
  return number_after("sockets: used ") == 0 && number_after(" tw ") == 0;
}

// On the calling thread only: enters `ns`, reads its socket counts and returns home. False when
// something is left, or when it cannot tell.
Result<bool> left_empty_on_this_thread(int ns, int home) {
  if (::setns(ns, CLONE_NEWNET) != 0) return false;
  std::string sockstat(4096, '\0');
  ssize_t n = -1;
  if (unique_fd stat(::open("/proc/thread-self/net/sockstat", O_RDONLY | O_CLOEXEC)); stat) {
    n = ::read(stat.get(), sockstat.data(), sockstat.size() - 1);
  }
  if (::setns(home, CLONE_NEWNET) != 0) {
    return fail(Errc::sandbox_setup, "return to the server's network namespace", errno);
  }
  if (n <= 0) return false;
  sockstat.resize(static_cast<std::size_t>(n));
  return nothing_left(sockstat);
}

// Namespaces kept for their twins' next runs, at most: each holds a little kernel memory.
constexpr std::size_t kept_per_spare = 4;

}  // namespace

int bring_up_loopback_in_child() noexcept {
  const int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return errno;
  ifreq req{};
  req.ifr_name[0] = 'l';  // no strncpy: this runs between fork and exec
  req.ifr_name[1] = 'o';
  int err = 0;
  if (::ioctl(sock, SIOCGIFFLAGS, &req) != 0) {
    err = errno;
  } else {
    req.ifr_flags = static_cast<short>(req.ifr_flags | IFF_UP | IFF_RUNNING);
    if (::ioctl(sock, SIOCSIFFLAGS, &req) != 0) err = errno;
  }
  ::close(sock);
  return err;
}

namespace {

// Runs `work` on a thread of its own, which may enter other namespaces and then ends with them:
// the caller's thread stays where it is whatever `work` does.
template <class T, class Work>
Result<T> on_own_thread(Work work) {
  Result<T> out = fail(Errc::internal, "namespace thread did not run");
  std::thread([&] { out = work(); }).join();
  return out;
}

}  // namespace

Result<unique_fd> make_netns_now() {
  return on_own_thread<unique_fd>([]() -> Result<unique_fd> {
    unique_fd home(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!home) return fail(Errc::sandbox_setup, "open /proc/thread-self/ns/net", errno);
    return make_on_this_thread(home.get());
  });
}

Result<unique_fd> listen_in_netns(int netns, std::uint16_t port) {
  return on_own_thread<unique_fd>([&]() -> Result<unique_fd> {
    if (::setns(netns, CLONE_NEWNET) != 0) return fail(Errc::sandbox_setup, "enter a run's network namespace", errno);
    unique_fd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!sock) return fail(Errc::sandbox_setup, "socket for the egress proxy in a run's namespace", errno);
    const int on = 1;
    (void)::setsockopt(sock.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(sock.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
      return fail(Errc::sandbox_setup, "bind 127.0.0.1:" + std::to_string(port) + " in a run's network namespace", errno);
    }
    if (::listen(sock.get(), 64) != 0) return fail(Errc::sandbox_setup, "listen in a run's network namespace", errno);
    return sock;
  });
}

int join_netns_in_child(int netns_fd) noexcept {
  return ::setns(netns_fd, CLONE_NEWNET) == 0 ? 0 : errno;
}

NetnsPool::NetnsPool(std::size_t spare, unique_fd home) : spare_(spare), home_(std::move(home)) {
  thread_ = std::thread([this] { fill(); });
}

Result<std::unique_ptr<NetnsPool>> NetnsPool::make(std::size_t spare) {
  unique_fd home(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!home) return fail(Errc::sandbox_setup, "open /proc/thread-self/ns/net", errno);
  return std::make_unique<NetnsPool>(spare, std::move(home));
}

NetnsPool::~NetnsPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

unique_fd NetnsPool::take(const std::string& owner) {
  unique_fd ns;
  {
    std::lock_guard lock(mutex_);
    if (const auto kept = kept_.find(owner); kept != kept_.end()) {
      ns = std::move(kept->second.back());
      kept->second.pop_back();
      if (kept->second.empty()) kept_.erase(kept);
      --kept_count_;
      ++stats_.reused;
      return ns;
    }
    if (ready_.empty()) {
      ++stats_.missed;
    } else {
      ns = std::move(ready_.front());
      ready_.pop_front();
      ++stats_.taken;
    }
    stalled_ = false;
  }
  wake_.notify_one();
  return ns;
}

void NetnsPool::give_back(const std::string& owner, unique_fd ns) {
  if (!ns) return;
  {
    std::lock_guard lock(mutex_);
    returned_.emplace_back(owner, std::move(ns));
  }
  wake_.notify_one();
}

NetnsPool::Stats NetnsPool::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void NetnsPool::wait_full() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [this] {
    return (returned_.empty() && !checking_ && (ready_.size() >= spare_ || stalled_)) || stopping_;
  });
}

// Each namespace given back: kept for its twin when nothing is left in it and there is room.
// Called with `lock` held; releases it while looking inside one.
void NetnsPool::check_returned(std::unique_lock<std::mutex>& lock) {
  while (!returned_.empty() && !stopping_) {
    auto [owner, ns] = std::move(returned_.front());
    returned_.pop_front();
    checking_ = true;
    lock.unlock();
    const auto empty = left_empty_on_this_thread(ns.get(), home_.get());
    lock.lock();
    checking_ = false;
    if (empty && *empty && kept_count_ < kept_per_spare * spare_) {
      kept_[owner].push_back(std::move(ns));
      ++kept_count_;
    } else {
      ++stats_.dropped;  // closed here: the kernel frees it
    }
  }
  changed_.notify_all();
}

void NetnsPool::fill() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !returned_.empty() || (ready_.size() < spare_ && !stalled_); });
    if (stopping_) return;
    check_returned(lock);
    if (stopping_ || ready_.size() >= spare_ || stalled_) continue;
    lock.unlock();
    auto made = make_on_this_thread(home_.get());
    lock.lock();
    if (made) {
      ready_.push_back(std::move(*made));
      ++stats_.made;
    } else {
      ++stats_.failed;
      stalled_ = true;  // e.g. user.max_net_namespaces reached: retry when a run took one
    }
    changed_.notify_all();
  }
}

}  // namespace pagi_exec::sys
