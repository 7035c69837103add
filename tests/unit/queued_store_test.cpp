// SPDX-License-Identifier: Apache-2.0
// QueuedStore: write-through, order kept across an outage, the bound and its stated gap, stop,
// housekeeping off the caller's thread; and SQLite behind it on a file system that fills up.
#include <doctest/doctest.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>

#include <sys/mount.h>
#include <unistd.h>

#include <pagi_exec/execution_store.hpp>

#include "queued_store.hpp"
#include "sqlite_store.hpp"
#include "test_support.hpp"

using pagi_exec::ExecutionRecord;
using pagi_exec::Notices;
using pagi_exec::detail::QueuedStore;
using pagi_exec::detail::QueueSpec;
using namespace std::chrono_literals;

namespace {

constexpr auto patience = 30s;  // a handshake that takes this long has failed

ExecutionRecord rec(int i, std::size_t output_bytes = 0) {
  ExecutionRecord r;
  r.execution_id = "id-" + std::to_string(i);
  r.twin_id = "twin";
  r.tool = "echo";
  r.allowed = r.ran = true;
  if (output_bytes > 0) r.out.lines = {std::string(output_bytes, 'x')};
  r.started = r.finished = std::chrono::system_clock::now();
  return r;
}

// A store that takes records, or fails every write while told to; it tells what it was asked.
class FakeStore final : public pagi_exec::ExecutionStore {
 public:
  void set_failing(bool failing) {
    const std::lock_guard lock(mutex_);
    failing_ = failing;
  }
  pagi_exec::Result<void> record(ExecutionRecord entry) override {
    const std::lock_guard lock(mutex_);
    attempted_.push_back(entry.execution_id);
    if (failing_) return pagi_exec::fail(pagi_exec::Errc::io, "database away");
    entry.sequence = stored_.size() + 1;
    stored_.push_back(std::move(entry));
    changed_.notify_all();
    return {};
  }
  pagi_exec::Result<pagi_exec::HistoryPage> query(const pagi_exec::HistoryQuery&) const override {
    const std::lock_guard lock(mutex_);
    return pagi_exec::HistoryPage{.records = {stored_.rbegin(), stored_.rend()}};
  }
  pagi_exec::Result<std::optional<ExecutionRecord>> find(const std::string& id) const override {
    const std::lock_guard lock(mutex_);
    for (const auto& r : stored_) {
      if (r.execution_id == id) return r;
    }
    return std::optional<ExecutionRecord>();
  }
  pagi_exec::StoreHealth health() const override { return {.healthy = true, .detail = "fake"}; }

  // The ids stored, in order, once there are `n` of them (fewer after `patience`).
  std::vector<std::string> stored_ids(std::size_t n) const {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, patience, [&] { return stored_.size() >= n; });
    std::vector<std::string> ids;
    for (const auto& r : stored_) ids.push_back(r.execution_id);
    return ids;
  }
  std::vector<std::string> attempted() const {
    const std::lock_guard lock(mutex_);
    return attempted_;
  }
  // record_all(): the size of each batch, in order. While held, a batch waits (once it is
  // being written, batch_sizes() shows it) until let_go().
  std::vector<pagi_exec::Result<void>> record_all(std::vector<ExecutionRecord> entries) override {
    std::unique_lock lock(mutex_);
    batches_.push_back(entries.size());
    changed_.notify_all();
    changed_.wait_for(lock, patience, [&] { return !held_; });
    lock.unlock();
    return ExecutionStore::record_all(std::move(entries));
  }
  void hold() {
    const std::lock_guard lock(mutex_);
    held_ = true;
  }
  void let_go() {
    const std::lock_guard lock(mutex_);
    held_ = false;
    changed_.notify_all();
  }
  // The batch sizes once there are `n` batches (fewer after `patience`).
  std::vector<std::size_t> batch_sizes(std::size_t n) const {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, patience, [&] { return batches_.size() >= n; });
    return batches_;
  }

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  bool failing_ = false;
  bool held_ = false;
  std::vector<std::size_t> batches_;
  std::vector<ExecutionRecord> stored_;
  std::vector<std::string> attempted_;
};

// Collects the store's notices; `hold_first` keeps the store's thread inside its first notice
// until release() (so the test knows where that thread is).
class Listener {
 public:
  explicit Listener(bool hold_first = false) : holding_(hold_first) {}
  pagi_exec::NoticeSink sink() {
    return [this](const Notices& notices) {
      std::unique_lock lock(mutex_);
      for (const auto& n : notices) heard_.push_back(n.text);
      changed_.notify_all();
      changed_.wait_for(lock, patience, [&] { return !holding_; });
    };
  }
  void release() {
    const std::lock_guard lock(mutex_);
    holding_ = false;
    changed_.notify_all();
  }
  // The first notice containing `part`, once heard (empty after `patience`).
  std::string wait_for(const std::string& part) {
    std::unique_lock lock(mutex_);
    std::string found;
    changed_.wait_for(lock, patience, [&] {
      for (const auto& text : heard_) {
        if (text.find(part) != std::string::npos) found = text;
      }
      return !found.empty();
    });
    return found;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool holding_;
  std::vector<std::string> heard_;
};

// What record_then()'s callers heard: how many, which failed, on which thread, and whether each
// record was in the inner store when its caller heard.
class Answers {
 public:
  pagi_exec::ExecutionStore::Recorded collect(const FakeStore* inner = nullptr, std::string id = {}) {
    return [this, inner, id, caller = std::this_thread::get_id()](pagi_exec::Result<void> result) {
      const bool kept = inner == nullptr || inner->find(id).value_or(std::nullopt).has_value();
      const std::lock_guard lock(mutex_);
      ++count_;
      if (!result) {
        if (failure_.empty()) failure_ = result.error().message();
        ++failures_;
      }
      if (!kept) ++answered_early_;
      if (std::this_thread::get_id() == caller) ++on_caller_;
      changed_.notify_all();
    };
  }
  pagi_exec::ExecutionStore::Recorded collect(const FakeStore& inner, std::string id) {
    return collect(&inner, std::move(id));
  }
  bool wait_for(int n) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, patience, [&] { return count_ >= n; });
  }
  int count() const { return locked(count_); }
  int failures() const { return locked(failures_); }
  int on_caller() const { return locked(on_caller_); }
  bool all_kept_when_answered() const { return locked(answered_early_) == 0; }
  std::string first_failure() const {
    const std::lock_guard lock(mutex_);
    return failure_;
  }

 private:
  int locked(const int& value) const {
    const std::lock_guard lock(mutex_);
    return value;
  }
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  int count_ = 0, failures_ = 0, on_caller_ = 0, answered_early_ = 0;
  std::string failure_;
};

std::vector<std::string> ids(int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i <= to; ++i) out.push_back("id-" + std::to_string(i));
  return out;
}

const QueueSpec quick{.first_retry = 1ms, .last_retry = 5ms, .stop_drain = 5s, .housekeeping_every = 10ms};
// Never retries on its own within a test: only the destructor's last drain writes the queue.
const QueueSpec only_at_stop{.first_retry = 1h, .last_retry = 1h, .stop_drain = 5s, .housekeeping_every = 1h};

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_SUITE("queued_store") {
  TEST_CASE("a healthy store is written through: the record is in it when record() returns") {
    auto inner = std::make_shared<FakeStore>();
    QueuedStore store(inner, quick);
    REQUIRE(store.record(rec(1)));
    CHECK(inner->stored_ids(0) == ids(1, 1));
    CHECK(store.queued() == 0);
    CHECK(store.health().healthy);
    CHECK(store.health().detail == "fake");
  }

  TEST_CASE("records written while the store fails are queued, findable, and written in order when it is back") {
    auto inner = std::make_shared<FakeStore>();
    Listener listener;
    QueuedStore store(inner, quick, listener.sink());
    inner->set_failing(true);
    for (int i = 0; i < 5; ++i) {
      const auto queued = store.record(rec(i));
      REQUIRE_FALSE(queued);
      CHECK(contains(queued.error().message(), "queued"));
    }
    // Only the oldest is tried again: the later ones wait behind it, in order.
    for (const auto& id : inner->attempted()) CHECK(id == "id-0");
    const auto health = store.health();
    CHECK_FALSE(health.healthy);
    CHECK(contains(health.detail, "history store unavailable since "));
    CHECK(contains(health.detail, "database away; 5 records queued"));
    CHECK(health.failed_writes == 5);  // not stored yet
    const auto found = store.find("id-3");
    REQUIRE(found);
    REQUIRE(found->has_value());
    CHECK((*found)->execution_id == "id-3");
    CHECK(contains(listener.wait_for("history store unavailable"), "database away"));

    inner->set_failing(false);
    CHECK(inner->stored_ids(5) == ids(0, 4));
    CHECK_FALSE(listener.wait_for("history store back").empty());
    CHECK(store.health().healthy);
    CHECK(store.queued() == 0);
    REQUIRE(store.record(rec(5)));  // written through again
    CHECK(inner->stored_ids(6) == ids(0, 5));
  }

  TEST_CASE("a full queue drops its oldest records and states the gap with their ids") {
    auto inner = std::make_shared<FakeStore>();
    Listener listener(true);
    auto spec = only_at_stop;
    spec.max_records = 3;
    {
      QueuedStore store(inner, spec, listener.sink());
      inner->set_failing(true);
      REQUIRE_FALSE(store.record(rec(0)));
      REQUIRE_FALSE(listener.wait_for("history store unavailable").empty());  // its thread is held there
      for (int i = 1; i < 10; ++i) REQUIRE_FALSE(store.record(rec(i)));
      CHECK(store.queued() == 3);
      listener.release();
      CHECK(contains(listener.wait_for("dropped"), "7 records dropped (execution ids id-0 .. id-6)"));
      const auto health = store.health();
      CHECK_FALSE(health.healthy);
      CHECK(health.failed_writes == 10);  // 7 dropped, 3 queued
      CHECK(contains(health.detail, "3 records queued, 7 records dropped from a full queue"));
      CHECK_FALSE((*store.find("id-6")).has_value());
      CHECK((*store.find("id-7")).has_value());
      inner->set_failing(false);
    }
    CHECK(inner->stored_ids(3) == ids(7, 9));
  }

  TEST_CASE("the queue is bounded in bytes too") {
    auto inner = std::make_shared<FakeStore>();
    auto spec = only_at_stop;
    spec.max_bytes = pagi_exec::encoded_size_bound(rec(0, 1000)) * 5 / 2;
    QueuedStore store(inner, spec);
    inner->set_failing(true);
    for (int i = 0; i < 4; ++i) REQUIRE_FALSE(store.record(rec(i, 1000)));
    CHECK(store.queued() == 2);
    CHECK(store.health().failed_writes == 4);  // 2 dropped, 2 queued
    CHECK((*store.find("id-3")).has_value());
    CHECK_FALSE((*store.find("id-1")).has_value());
  }

  TEST_CASE("at stop, what is queued is written if the store is back") {
    auto inner = std::make_shared<FakeStore>();
    Listener listener;
    {
      QueuedStore store(inner, only_at_stop, listener.sink());
      inner->set_failing(true);
      for (int i = 0; i < 3; ++i) REQUIRE_FALSE(store.record(rec(i)));
      REQUIRE_FALSE(listener.wait_for("history store unavailable").empty());
      inner->set_failing(false);
    }
    CHECK(inner->stored_ids(3) == ids(0, 2));
    CHECK_FALSE(listener.wait_for("history store back").empty());
  }

  TEST_CASE("at stop, what could not be written is named") {
    auto inner = std::make_shared<FakeStore>();
    Listener listener;
    auto spec = quick;
    spec.stop_drain = 20ms;
    {
      QueuedStore store(inner, spec, listener.sink());
      inner->set_failing(true);
      for (int i = 0; i < 3; ++i) REQUIRE_FALSE(store.record(rec(i)));
    }
    CHECK(contains(listener.wait_for("at stop"), "3 records still queued at stop and not written (execution ids id-0 .. id-2)"));
    CHECK(inner->stored_ids(0).empty());
  }

  TEST_CASE("record_then: records that come while a batch is written go together in the next, each answered once it is kept") {
    auto inner = std::make_shared<FakeStore>();
    QueuedStore store(inner, quick);
    Answers answers;
    inner->hold();
    store.record_then(rec(0), answers.collect(*inner, "id-0"));
    REQUIRE(inner->batch_sizes(1) == std::vector<std::size_t>{1});  // the writer holds id-0's batch
    for (int i = 1; i <= 10; ++i) store.record_then(rec(i), answers.collect(*inner, "id-" + std::to_string(i)));
    CHECK(answers.count() == 0);  // nobody is answered before its record is kept
    inner->let_go();
    REQUIRE(answers.wait_for(11));
    CHECK(inner->batch_sizes(2) == std::vector<std::size_t>{1, 10});
    CHECK(inner->stored_ids(11) == ids(0, 10));
    CHECK(answers.all_kept_when_answered());
    CHECK(answers.failures() == 0);
    CHECK(answers.on_caller() == 0);  // the store's thread answered each
  }

  TEST_CASE("record_then while the store fails: the caller hears its record is queued, and it is written once the store is back") {
    auto inner = std::make_shared<FakeStore>();
    QueuedStore store(inner, quick);
    Answers answers;
    inner->set_failing(true);
    store.record_then(rec(0), answers.collect());
    REQUIRE(answers.wait_for(1));
    CHECK(answers.failures() == 1);
    CHECK(contains(answers.first_failure(), "queued"));
    CHECK((*store.find("id-0")).has_value());
    store.record_then(rec(1), answers.collect());  // behind a queue: answered at once, queued too
    CHECK(answers.count() == 2);
    CHECK(answers.on_caller() == 1);
    inner->set_failing(false);
    CHECK(inner->stored_ids(2) == ids(0, 1));
  }

  TEST_CASE("at stop, record_then's waiting records are written and answered") {
    auto inner = std::make_shared<FakeStore>();
    Answers answers;
    {
      QueuedStore store(inner, quick);
      inner->hold();
      for (int i = 0; i < 5; ++i) store.record_then(rec(i), answers.collect());
      REQUIRE_FALSE(inner->batch_sizes(1).empty());
      inner->let_go();
    }
    CHECK(answers.count() == 5);
    CHECK(answers.failures() == 0);
    CHECK(inner->stored_ids(5) == ids(0, 4));
  }

  TEST_CASE("record_then on SQLite: many callers at once, every record kept and findable when its caller hears") {
    test_support::TempDir dir;
    const pagi_exec::StoreSettings settings{.kind = pagi_exec::StoreSettings::Kind::sqlite,
                                            .path = dir.path() / "history.db"};
    auto opened = pagi_exec::open_execution_store(settings);
    REQUIRE(opened);
    auto& store = **opened;
    std::mutex mutex;
    std::condition_variable answered;
    int kept = 0, findable = 0;
    std::vector<std::thread> callers;
    for (int t = 0; t < 8; ++t) {
      callers.emplace_back([&, t] {
        for (int i = 0; i < 50; ++i) {
          const auto id = "id-" + std::to_string(t * 50 + i);
          store.record_then(rec(t * 50 + i), [&, id](pagi_exec::Result<void> result) {
            const bool found = store.find(id).value_or(std::nullopt).has_value();
            const std::lock_guard lock(mutex);
            kept += result ? 1 : 0;
            findable += found ? 1 : 0;
            answered.notify_all();
          });
        }
      });
    }
    for (auto& caller : callers) caller.join();
    std::unique_lock lock(mutex);
    REQUIRE(answered.wait_for(lock, patience, [&] { return kept == 400; }));
    CHECK(findable == 400);
    const auto page = store.query({.page_size = 500});
    REQUIRE(page);
    CHECK(page->records.size() == 400);
    CHECK(store.health().healthy);
  }

  TEST_CASE("housekeeping runs on the store's own thread once records were written") {
    auto inner = std::make_shared<FakeStore>();
    std::mutex mutex;
    std::condition_variable ran;
    std::optional<std::thread::id> on;
    QueuedStore store(inner, quick, {}, [&]() -> pagi_exec::Result<void> {
      const std::lock_guard lock(mutex);
      on = std::this_thread::get_id();
      ran.notify_all();
      return {};
    });
    REQUIRE(store.record(rec(1)));
    std::unique_lock lock(mutex);
    REQUIRE(ran.wait_for(lock, patience, [&] { return on.has_value(); }));
    CHECK(*on != std::this_thread::get_id());
  }

  TEST_CASE("housekeeping failures are told once") {
    auto inner = std::make_shared<FakeStore>();
    Listener listener;
    QueuedStore store(inner, quick, listener.sink(), [] { return pagi_exec::fail(pagi_exec::Errc::io, "checkpoint: disk I/O error"); });
    REQUIRE(store.record(rec(1)));
    CHECK(contains(listener.wait_for("housekeeping"), "history store housekeeping failed: checkpoint: disk I/O error"));
  }
}

namespace {

// A tmpfs of `bytes` mounted on a fresh folder, unmounted when done (root only).
class SmallFileSystem {
 public:
  explicit SmallFileSystem(std::size_t bytes) {
    path_ = dir_.path() / "fs";
    std::filesystem::create_directories(path_);
    const auto options = "size=" + std::to_string(bytes);
    mounted_ = ::mount("tmpfs", path_.c_str(), "tmpfs", 0, options.c_str()) == 0;
    errno_ = errno;
  }
  ~SmallFileSystem() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  SmallFileSystem(const SmallFileSystem&) = delete;
  SmallFileSystem& operator=(const SmallFileSystem&) = delete;
  [[nodiscard]] bool mounted() const noexcept { return mounted_; }
  [[nodiscard]] int error() const noexcept { return errno_; }
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

  // Writes a file until the file system is full.
  void fill(const std::filesystem::path& file) const {
    std::ofstream out(file, std::ios::binary);
    const std::string chunk(4096, 'f');
    while (out.write(chunk.data(), static_cast<std::streamsize>(chunk.size())) && out.flush()) {
    }
  }

 private:
  test_support::TempDir dir_;
  std::filesystem::path path_;
  bool mounted_ = false;
  int errno_ = 0;
};

}  // namespace

TEST_SUITE("queued_store") {
  TEST_CASE("SQLite on a full disk: records queue, stay findable, and are written in order once there is room" *
            test_support::skip_if(::geteuid() != 0, "needs root to mount a small tmpfs")) {
    SmallFileSystem fs(4 << 20);
    if (!fs.mounted()) {
      MESSAGE("skipped: cannot mount a tmpfs here (" << std::strerror(fs.error()) << "); needs root");
      return;
    }
    Listener listener;
    const pagi_exec::StoreSettings settings{.kind = pagi_exec::StoreSettings::Kind::sqlite,
                                            .path = fs.path() / "history.db"};
    auto opened = pagi_exec::open_execution_store(settings, listener.sink());
    REQUIRE(opened);
    auto& store = **opened;
    REQUIRE(store.record(rec(0)));

    const auto filler = fs.path() / "filler";
    fs.fill(filler);
    REQUIRE_FALSE(store.record(rec(1, 1 << 20)));  // a megabyte of output: more log than is left
    REQUIRE_FALSE(store.record(rec(2)));           // small, but behind it
    auto health = store.health();
    CHECK_FALSE(health.healthy);
    CHECK(contains(health.detail, "2 records queued"));
    CHECK(contains(listener.wait_for("history store unavailable"), "full"));
    REQUIRE((*store.find("id-2")).has_value());

    std::filesystem::remove(filler);
    CHECK_FALSE(listener.wait_for("history store back").empty());
    health = store.health();
    CHECK(health.healthy);
    CHECK(health.failed_writes == 0);
    const auto page = store.query({});
    REQUIRE(page);
    std::vector<std::string> newest_first;
    for (const auto& r : page->records) newest_first.push_back(r.execution_id);
    CHECK(newest_first == std::vector<std::string>{"id-2", "id-1", "id-0"});
    CHECK(page->records[0].sequence > page->records[1].sequence);
  }
}

TEST_SUITE("queued_store") {
  TEST_CASE("SQLite's write-ahead log is checkpointed by the queue's thread, so it stops growing") {
    test_support::TempDir dir;
    const pagi_exec::StoreSettings settings{.kind = pagi_exec::StoreSettings::Kind::sqlite,
                                            .path = dir.path() / "history.db",
                                            .max_records = 100'000,
                                            .output_budget_bytes = 1ULL << 30};
    auto sqlite = pagi_exec::detail::SqliteStore::open(settings);
    REQUIRE(sqlite);
    std::mutex mutex;
    std::condition_variable ran;
    std::uint64_t covered = 0;  // the newest record a finished checkpoint began after
    auto spec = quick;
    spec.housekeeping_every = 1ms;
    QueuedStore store(*sqlite, spec, {}, [&, raw = sqlite->get()] {
      const auto newest = raw->query({.page_size = 1});
      auto done = raw->checkpoint();
      const std::lock_guard lock(mutex);
      if (newest && !newest->records.empty()) covered = std::max(covered, newest->records.front().sequence);
      ran.notify_all();
      return done;
    });
    const auto wal = dir.path() / "history.db-wal";
    // Writes a batch, then waits for a checkpoint that began after its last record; the log's
    // size then.
    std::uint64_t written = 0;
    const auto batch = [&] {
      for (int i = 0; i < 100; ++i) REQUIRE(store.record(rec(static_cast<int>(written++), 8192)));
      std::unique_lock lock(mutex);
      REQUIRE(ran.wait_for(lock, patience, [&] { return covered >= written; }));
      return std::filesystem::file_size(wal);
    };
    const auto first = batch();
    CHECK(first > 100 * 8192);  // the whole first batch went to the log
    // A writer starts the log again from its head only when no reader and no checkpoint is in
    // it at that moment (a checkpoint running beside a batch's first write keeps it going: seen
    // under ASan), so the file, which never shrinks, may grow by a batch now and then. Without
    // checkpoints it would end at eight times the first batch.
    std::vector<std::uint64_t> sizes;
    std::string told = std::to_string(first);
    for (int i = 0; i < 7; ++i) told += " " + std::to_string(sizes.emplace_back(batch()));
    INFO("the log's size after each batch: ", told);
    CHECK(sizes.back() < first * 4);
    CHECK(store.health().healthy);
  }
}
