// SPDX-License-Identifier: Apache-2.0
// Workers: a thread per waiting task, reused while it lingers.
#include "workers.hpp"

#include <system_error>
#include <thread>

namespace tools_server {

Workers::~Workers() {
  std::unique_lock lock(mutex_);
  closing_ = true;
  ready_.notify_all();
  ended_.wait(lock, [this] { return threads_ == 0; });
}

bool Workers::run(std::function<void()> task) {
  std::unique_lock lock(mutex_);
  if (idle_ > 0) {
    --idle_;
    tasks_.push_back(std::move(task));
    ready_.notify_one();
    return true;
  }
  if (threads_ >= max_threads_) return false;
  ++threads_;
  lock.unlock();
  try {
    std::thread([this, first = std::move(task)]() mutable { work(std::move(first)); }).detach();
    return true;
  } catch (const std::system_error&) {  // EAGAIN: the process or the system is out of threads
    lock.lock();
    --threads_;
    return false;
  }
}

void Workers::work(std::function<void()> task) {
  std::unique_lock lock(mutex_);
  while (task) {
    lock.unlock();
    task();
    task = nullptr;  // its captures end before the thread waits for more
    lock.lock();
    ++idle_;
    const bool given = ready_.wait_for(lock, linger_, [this] { return !tasks_.empty() || closing_; });
    if (given && !tasks_.empty()) {
      task = std::move(tasks_.front());
      tasks_.pop_front();
    } else {
      --idle_;
    }
  }
  --threads_;
  ended_.notify_all();  // under the lock: the pool cannot be destroyed before this thread lets go of it
}

}  // namespace tools_server
