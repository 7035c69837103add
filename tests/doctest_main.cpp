// SPDX-License-Identifier: Apache-2.0
// The doctest main, compiled once and linked into every test executable. With
// PAGI_EXEC_TEST_SPAWN_HELPER=1 (the `<name>_via_helper` tests of tests/meson.build) it first
// starts the spawn helper, as the server's main() does, so every run of the binary goes through it.
// Its listener reports skips honestly (test_support.hpp): each skipped case with its reason, a
// closing count of cases run and skipped, and exit 77 (meson's SKIP) when no case ran.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <pagi_exec/spawner.hpp>

#include "sys/spawn_helper.hpp"
#include "test_support.hpp"

namespace {

// What the listener saw, for main's closing line and exit code.
struct Tally {
  unsigned ran = 0;            // cases that ran (partly skipped ones included)
  unsigned partly_skipped = 0;
  unsigned skipped = 0;        // by skip_if, or every pass of them by skip_case
  unsigned not_asked = 0;      // only_when_asked: opt-in cases, not run unless asked
};
Tally tally;

std::string reasons_text(const std::vector<std::string>& reasons) {
  std::string text;
  for (const auto& reason : reasons) text += (text.empty() ? "" : "; ") + reason;
  return text;
}

// A listener (it runs beside whichever reporter prints): turns skip_if, skip_case and skip_part
// into "SKIPPED:" / "PARTLY SKIPPED:" lines, which scripts/test.sh reads from meson's log.
class SkipListener : public doctest::IReporter {
 public:
  explicit SkipListener(const doctest::ContextOptions& options) : out_(*options.cout) {}

  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats&) override {}
  void test_case_start(const doctest::TestCaseData& tc) override {
    passes_ = skipped_passes_ = 0;
    reasons_.clear();
    auto& r = test_support::skips::registry();
    const std::lock_guard lock(r.mutex);
    r.case_reasons.clear();
    r.part_reasons.clear();
    case_ = &tc;
  }
  void test_case_reenter(const doctest::TestCaseData&) override { end_pass(); }
  void test_case_end(const doctest::CurrentTestCaseStats&) override {
    end_pass();
    std::vector<std::string> parts;
    {
      auto& r = test_support::skips::registry();
      const std::lock_guard lock(r.mutex);
      parts = std::exchange(r.part_reasons, {});
    }
    if (skipped_passes_ == passes_) {
      ++tally.skipped;
      print("SKIPPED", *case_, reasons_text(reasons_));
      return;
    }
    ++tally.ran;
    for (const auto& reason : reasons_) parts.push_back(reason);  // passes of some subcases only
    if (parts.empty()) return;
    ++tally.partly_skipped;
    print("PARTLY SKIPPED", *case_, reasons_text(parts));
  }
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData& tc) override {
    if (!tc.m_skip) return;  // left out by a filter (-tc and the like), not skipped
    auto& r = test_support::skips::registry();
    const std::lock_guard lock(r.mutex);
    const auto at = test_support::skips::where(tc.m_file.c_str(), tc.m_line);
    if (const auto how = r.opt_in.find(at); how != r.opt_in.end()) {
      ++tally.not_asked;
      print("NOT ASKED FOR", tc, how->second);
      return;
    }
    const auto reason = r.decorated.find(at);
    ++tally.skipped;
    print("SKIPPED", tc, reason == r.decorated.end() ? "doctest::skip, no reason given (use test_support::skip_if)"
                                                      : reason->second);
  }

 private:
  void end_pass() {
    ++passes_;
    auto& r = test_support::skips::registry();
    const std::lock_guard lock(r.mutex);
    if (r.case_reasons.empty()) return;
    ++skipped_passes_;
    for (auto& reason : std::exchange(r.case_reasons, {})) reasons_.push_back(std::move(reason));
  }
  void print(const char* what, const doctest::TestCaseData& tc, const std::string& why) {
    out_ << what << ": " << tc.m_file.c_str() << ":" << tc.m_line << " \"" << tc.m_name << "\": " << why << std::endl;
  }

  std::ostream& out_;
  const doctest::TestCaseData* case_ = nullptr;
  unsigned passes_ = 0;
  unsigned skipped_passes_ = 0;
  std::vector<std::string> reasons_;
};

REGISTER_LISTENER("pagi_exec_skips", 1, SkipListener);

}  // namespace

int main(int argc, char** argv) {
  if (const char* wanted = std::getenv("PAGI_EXEC_TEST_SPAWN_HELPER"); wanted != nullptr && std::string_view(wanted) == "1") {
    if (auto started = pagi_exec::start_spawn_helper(pagi_exec::spawner_program("")); !started) {
      std::fprintf(stderr, "cannot start the spawn helper: %s\n", started.error().message().c_str());
      return 1;
    }
  }
  doctest::Context context(argc, argv);
  const int status = context.run();
  if (context.shouldExit()) return status;  // --help, --list-test-cases and the like
  // doctest counts a case skipped at run time as passed: this line is the honest count.
  std::printf("[pagi-exec] test cases: %u ran (%u of them partly skipped) | %u skipped | %u not asked for\n",
              tally.ran, tally.partly_skipped, tally.skipped, tally.not_asked);
  // A binary meant to test the helper's path that never took it tested nothing new.
  if (const auto counts = pagi_exec::sys::spawn_counts();
      pagi_exec::sys::spawn_helper_pid() > 0 && counts.via_helper == 0 && counts.direct > 0) {
    std::fprintf(stderr, "the spawn helper was started but every run (%llu) was cloned directly\n",
                 static_cast<unsigned long long>(counts.direct));
    return 1;
  }
  if (status == 0 && tally.ran == 0 && tally.skipped > 0) return 77;  // meson: SKIP, nothing here could run
  return status;
}
