// Tests of the reports library's Markdown tables; tests/test_results.cpp
// has the results files, merge, compare and the report.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/errors.h"
#include "reports/markdown.h"

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
