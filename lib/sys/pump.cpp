// SPDX-License-Identifier: Apache-2.0
// The output pump: output, the report, stop requests and the backstop of one process tree.
#include "sys/pump.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>

#include "sys/cgroup.hpp"
#include "sys/child.hpp"
#include "sys/tree_root.hpp"

namespace pagi_exec::sys {

void Pump::OutputPipe::drain(const OutputSink& sink) {
  std::array<char, 64 * 1024> buf;
  for (;;) {
    const auto n = ::read(fd, buf.data(), buf.size());
    if (n > 0) {
      const std::string_view chunk(buf.data(), static_cast<std::size_t>(n));
      capture.feed(chunk);
      if (sink && !sink_refused && !sink(stream, chunk)) sink_refused = true;
      continue;
    }
    if (n == 0 || (errno != EAGAIN && errno != EINTR)) open = false;
    return;
  }
}

Pump::Pump(const TreeRoot& child, PumpEnds ends, const CgroupLease* cgroup, bool started_header, const Limits& limits)
    : child_(child), ends_(ends), cgroup_(cgroup), header_left_(started_header ? sizeof started_ : 0),
      out_{ends.out, OutputStream::out, StreamCapture(limits.output)},
      err_{ends.err, OutputStream::err, StreamCapture(limits.output)},
      give_up_(monotonic_us() + std::chrono::duration_cast<std::chrono::microseconds>(limits.timeout).count() +
               backstop_grace_us) {}

void Pump::run(const OutputSink& sink) {
  while (out_.open || err_.open || report_open_) {
    pollfd fds[4] = {{out_.open ? out_.fd : -1, POLLIN, 0},
                     {err_.open ? err_.fd : -1, POLLIN, 0},
                     {report_open_ ? ends_.report : -1, POLLIN, 0},
                     {ends_.wake, POLLIN, 0}};
    const auto left_ms = (give_up_ - monotonic_us() + 999) / 1000;
    const int ready = ::poll(fds, 4, static_cast<int>(std::max<std::int64_t>(left_ms, 0)));
    if (ready == 0 || (ready < 0 && errno != EINTR)) {
      if (killed_) return;  // what is left will not end: abandon the output
      kill_tree();
      continue;
    }
    if (ready < 0) continue;
    if (fds[0].revents != 0) out_.drain(sink);
    if (fds[1].revents != 0) err_.drain(sink);
    if (fds[2].revents != 0) read_report();
    if (fds[3].revents != 0 || out_.sink_refused || err_.sink_refused) {
      eventfd_t ignored;
      ::eventfd_read(ends_.wake, &ignored);
      ends_.control->reset();  // the child kills the tree
    }
  }
}

// For runs without a cgroup, the command's process group is what remains when the supervisor
// died. (A group's number is not reused while the group has members; pid numbers only come
// round again after pid_max allocations.)
void Pump::kill_tree() {
  child_.kill();
  if (header_left_ == 0 && started_.pid > 0 && !has_report()) ::kill(-started_.pid, SIGKILL);
  if (cgroup_ != nullptr) (void)CgroupPool::kill_members(*cgroup_);
  killed_ = true;
  give_up_ = std::min(give_up_, monotonic_us() + 250'000);
}

// A supervisor's CommandStarted, then the ChildReport.
void Pump::read_report() {
  const bool header = header_left_ > 0;
  auto* dst = header ? reinterpret_cast<char*>(&started_) + (sizeof started_ - header_left_)
                     : reinterpret_cast<char*>(&report_) + report_bytes_;
  const auto n = ::read(ends_.report, dst, header ? header_left_ : sizeof report_ - report_bytes_);
  if (n > 0 && header) header_left_ -= static_cast<std::size_t>(n);
  if (n > 0 && !header) report_bytes_ += static_cast<std::size_t>(n);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) report_open_ = false;
  if (!report_open_ && !has_report() && !killed_) {
    supervisor_lost_ = true;
    kill_tree();
  }
}

}  // namespace pagi_exec::sys
