// Tests of the reports library's Markdown tables; tests/test_results.cpp
// has the results files, merge, compare and the report.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "core/interrupt.h"
#include "reports/markdown.h"
#include "tests/test_basics.h"

using namespace imbench;

TEST(Markdown, TableRendersAlignedAndEscaped) {
  reports::MarkdownTable t({"model", "acc"});
  t.add_row({"DET", "98.10%"});
  t.add_row({"a|b", reports::format_percent(0.5, 0.01)});
  EXPECT_EQ(t.render(),
            "| model | acc           |\n"
            "|-------|---------------|\n"
            "| DET   | 98.10%        |\n"
            "| a\\|b  | 50.00 ± 1.00% |\n");
  EXPECT_THROW(t.add_row({"only one"}), UsageError);
}

// core/interrupt.h: the handler records the signal, stop_point() throws, and
// the next signal takes the default action. (Each ctest test is a process of
// its own, so the recorded signal stays in this one.)
TEST(Interrupt, StopPointThrowsOnceASignalArrivedAndTheNextSignalIsTheDefault) {
  install_stop_handlers();
  EXPECT_EQ(stop_signal(), 0);
  EXPECT_NO_THROW(stop_point());
  ASSERT_EQ(::raise(SIGTERM), 0);  // the handler runs; the process goes on
  EXPECT_EQ(stop_signal(), SIGTERM);
  try {
    stop_point();
    ADD_FAILURE() << "stop_point() did not throw after SIGTERM";
  } catch (const Interrupted& e) {
    EXPECT_EQ(e.signal(), SIGTERM);
    EXPECT_EQ(e.exit_code(), 143);
    EXPECT_STREQ(e.what(), "interrupted by SIGTERM: nothing was kept; running the same command again starts over");
  }
  struct sigaction now {};
  ASSERT_EQ(::sigaction(SIGINT, nullptr, &now), 0);
  EXPECT_EQ(now.sa_handler, SIG_DFL) << "a second SIGINT must stop the process at once";
  ASSERT_EQ(::sigaction(SIGTERM, nullptr, &now), 0);
  EXPECT_EQ(now.sa_handler, SIG_DFL);
}

TEST(Interrupt, MessageNamesWhatWasKeptAndHowToResume) {
  const Interrupted e(SIGINT, "3 of 11 cells in a.h5", true);
  EXPECT_EQ(e.exit_code(), 130);
  EXPECT_STREQ(e.what(), "interrupted by SIGINT: kept 3 of 11 cells in a.h5; run the same command again to resume");
}

// A writer killed mid-write leaves PATH.tmp-PID; the next replace of PATH
// removes those whose process is gone, and keeps a live process's.
TEST(AtomicFile, ReplaceRemovesTemporaryFilesOfDeadProcessesOnly) {
  testing_support::TempDir dir;
  const std::string path = dir.file("results.h5");
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(0);
  ASSERT_EQ(::waitpid(child, nullptr, 0), child);  // reaped: its PID runs nothing now
  const std::string dead = fmt::format("{}.tmp-{}", path, child);
  const std::string alive = fmt::format("{}.tmp-{}", path, ::getppid());
  const std::string other = dir.file("other.h5.tmp-1234567");
  for (const auto& f : {dead, alive, other}) std::ofstream(f) << "half written";
  write_file_atomically(path, "new");
  EXPECT_FALSE(std::filesystem::exists(dead));
  EXPECT_TRUE(std::filesystem::exists(alive));
  EXPECT_TRUE(std::filesystem::exists(other)) << "only the temporaries of the file written are touched";
  std::ifstream in(path);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "new");
}
