// SPDX-License-Identifier: Apache-2.0
// Loopback-only network namespaces, one per native execution (see network_namespaces(7)).
//
// A namespace per execution, never reused: two runs must not reach each other's listeners on
// 127.0.0.1, nor share a port with SO_REUSEPORT, and a namespace a run has used may keep its
// sockets (TIME_WAIT, a listener held by a process that is still being reaped). Creating one
// costs ~0.7 ms of kernel work (bench/netns_bench), so a background thread prepares them.
#include "sys/netns.hpp"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

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

unique_fd NetnsPool::take() {
  unique_fd ns;
  {
    std::lock_guard lock(mutex_);
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

NetnsPool::Stats NetnsPool::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void NetnsPool::wait_full() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [this] { return ready_.size() >= spare_ || stalled_ || stopping_; });
}

void NetnsPool::fill() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || (ready_.size() < spare_ && !stalled_); });
    if (stopping_) return;
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
