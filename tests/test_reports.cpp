// Tests of the attacks (threat model) and reports (Markdown) libraries.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "attacks/threat_model.h"
#include "core/errors.h"
#include "reports/markdown.h"

using namespace imbench;
using testing::HasSubstr;

TEST(ThreatModel, EpsIsWrittenAsPeopleWriteIt) {
  EXPECT_EQ(attacks::format_eps(8.0 / 255.0), "8/255");
  EXPECT_EQ(attacks::format_eps(2.0 / 255.0), "2/255");
  EXPECT_EQ(attacks::format_eps(0.3), "0.3");
  EXPECT_EQ(attacks::format_eps(0.1), "0.1");
  EXPECT_EQ(attacks::format_eps(0.0), "0");
  EXPECT_EQ(attacks::format_eps(1.5), "1.5");
}

TEST(ThreatModel, DescribeAndValidate) {
  attacks::ThreatModel t;
  t.norm = attacks::Norm::kLinf;
  t.eps = 8.0 / 255.0;
  EXPECT_EQ(t.describe(), "Linf eps=8/255 untargeted, inputs in [0, 1]");
  t.norm = attacks::Norm::kL2;
  t.eps = 1.5;
  t.target = attacks::TargetRule::kLeastLikely;
  EXPECT_EQ(t.describe(), "L2 eps=1.5 targeted, target least-likely, inputs in [0, 1]");
  t.eps = -1;
  EXPECT_THROW(t.validate(), UsageError);
  t.eps = std::nan("");
  EXPECT_THROW(t.validate(), UsageError);
  t.eps = std::numeric_limits<double>::infinity();  // unbounded: for minimum-norm attacks
  EXPECT_NO_THROW(t.validate());
  EXPECT_EQ(t.describe(), "L2 eps=inf targeted, target least-likely, inputs in [0, 1]");
  t.eps = 0.1;
  t.lower = 1;
  EXPECT_THROW(t.validate(), UsageError);
}

TEST(ThreatModel, ParsingWithSuggestions) {
  EXPECT_EQ(attacks::parse_norm("linf"), attacks::Norm::kLinf);
  EXPECT_EQ(attacks::parse_norm("l2"), attacks::Norm::kL2);
  try {
    attacks::parse_norm("l3");
    FAIL() << "no exception";
  } catch (const UsageError& e) {
    EXPECT_THAT(e.what(), HasSubstr("did you mean 'l2'"));
  }
  EXPECT_EQ(attacks::parse_target_rule("least-likely"), attacks::TargetRule::kLeastLikely);
  EXPECT_THROW(attacks::parse_target_rule("least"), UsageError);
}

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
