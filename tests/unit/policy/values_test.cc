// Small value parsers and formatters: durations, tags and templates, timestamps, and the
// human descriptions of rules.
#include <gtest/gtest.h>

#include "policy/describe.h"
#include "policy/duration.h"
#include "policy/parser.h"
#include "policy/tags.h"
#include "tests/unit/policy/test_util.h"

namespace blocksnap::policy {
namespace {

using namespace std::chrono;
using testing::T;

TEST(Duration, ParsesUnits) {
  EXPECT_EQ(ParseDuration("30m").value(), 30min);
  EXPECT_EQ(ParseDuration("12h").value(), 12h);
  EXPECT_EQ(ParseDuration("5d").value(), days(5));
  EXPECT_EQ(ParseDuration("2w").value(), days(14));
  EXPECT_EQ(ParseDuration("1000w").value(), days(7000));
}

TEST(Duration, RejectsMalformed) {
  for (const char* bad : {"", "m", "0m", "-5m", "+5m", "1.5h", "5", "5s", "5 d", "5D", "1h30m",
                          "1001w", "9999999999m"}) {
    EXPECT_FALSE(ParseDuration(bad).ok()) << bad;
  }
  EXPECT_EQ(ParseDuration("1001w").error().message, "bad duration '1001w': longer than 1000w");
}

TEST(Duration, Formats) {
  EXPECT_EQ(FormatAge(days(6) + 3h), "6d");
  EXPECT_EQ(FormatAge(150min), "2h");
  EXPECT_EQ(FormatAge(59min), "59m");
  EXPECT_EQ(FormatAge(seconds(5)), "5s");
  EXPECT_EQ(FormatDuration(days(7)), "1w");
  EXPECT_EQ(FormatDuration(days(3)), "3d");
  EXPECT_EQ(FormatDuration(90min), "90m");
  EXPECT_EQ(FormatDuration(120min), "2h");
}

TEST(Timestamps, ParseAndFormat) {
  EXPECT_EQ(FormatTimestamp(T("2024-02-29T23:59:59Z")), "2024-02-29T23:59:59Z");
  EXPECT_EQ(FormatTimestamp(T("2024-03-31T03:00:00+02:00")), "2024-03-31T01:00:00Z");
  EXPECT_EQ(FormatTimestamp(T("2024-11-03T01:30:00-05:00")), "2024-11-03T06:30:00Z");
  TimePoint t;
  EXPECT_FALSE(ParseTimestamp("2023-02-29T00:00:00Z", &t));
  EXPECT_FALSE(ParseTimestamp("2024-01-01 00:00:00Z", &t));
  EXPECT_FALSE(ParseTimestamp("2024-01-01T24:00:00Z", &t));
  EXPECT_FALSE(ParseTimestamp("2024-01-01T00:00:00", &t));
}

TEST(Tags, KeysAndValues) {
  EXPECT_TRUE(ValidateTagKey("backup").ok());
  EXPECT_TRUE(ValidateTagKey("k8s.io/app:name-1_x").ok());
  EXPECT_EQ(ValidateTagKey("").error().message, "tag key '' must be 1 to 128 characters");
  EXPECT_FALSE(ValidateTagKey(std::string(129, 'k')).ok());
  EXPECT_TRUE(ValidateTagKey(std::string(128, 'k')).ok());
  EXPECT_EQ(ValidateTagKey("blocksnap:policy").error().message,
            "tag key 'blocksnap:policy' uses the reserved prefix 'blocksnap:'");
  EXPECT_TRUE(ValidateTagKey("blocksnap").ok());
  EXPECT_TRUE(ValidateTagValue("").ok());
  EXPECT_TRUE(ValidateTagValue("hello world ~!").ok());
  EXPECT_FALSE(ValidateTagValue(std::string(257, 'v')).ok());
  EXPECT_EQ(ValidateTagValue("tab\there").error().message,
            "tag value contains a non-printable character");
}

TEST(Tags, Templates) {
  EXPECT_TRUE(ValidateTagTemplate("{policy}/{schedule}/{volume}@{timestamp}").ok());
  EXPECT_EQ(ValidateTagTemplate("{policy").error().message, "unmatched '{' in tag value '{policy'");
  EXPECT_EQ(ValidateTagTemplate("x}").error().message, "unmatched '}' in tag value 'x}'");
  EXPECT_EQ(ValidateTagTemplate("{Policy}").error().message,
            "unknown placeholder '{Policy}' in tag value (use {policy}, {schedule}, {volume} or "
            "{timestamp})");
  TagContext ctx{"p", "daily,weekly", "db1", T("2024-04-01T00:00:00Z")};
  EXPECT_EQ(ExpandTagTemplate("{policy}/{schedule}/{volume}@{timestamp}", ctx),
            "p/daily,weekly/db1@2024-04-01T00:00:00Z");
  EXPECT_EQ(ExpandTagTemplate("plain", ctx), "plain");
  // Long names are cut to the 256-character limit of tag values.
  TagContext longer{std::string(64, 'p'), std::string(259, 's'), std::string(64, 'v'), {}};
  EXPECT_EQ(ExpandTagTemplate("{policy}{schedule}", longer).size(), 256u);
}

TEST(Names, Validate) {
  EXPECT_TRUE(ValidateName("policy name", "db-nightly_v2.1").ok());
  EXPECT_FALSE(ValidateName("policy name", "..").ok());
  EXPECT_FALSE(ValidateName("policy name", "a,b").ok());
  EXPECT_FALSE(ValidateName("policy name", std::string(65, 'a')).ok());
  EXPECT_EQ(SplitList("a,b"), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(SplitList("").empty());
}

TEST(Describe, PolicySummary) {
  ParsedFile f = ParsePolicyFile("d.yaml", R"(name: db
description: Databases
target: {tags: {backup: nightly, tier: db}, match: all}
schedules:
  - name: nightly
    create: {every: 24h, times: ["03:00", "15:30"], timezone: Europe/Berlin}
    retain: {age: 5d, count: 10}
    tags: {kind: nightly}
    copy_tags: true
  - name: monthly
    create: {cron: "0 4 1 * *"}
    retain: {monthly: 12, yearly: 3}
)",
                                 testing::Zones());
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(DescribeCreate(f.policies[0].schedules[0].create),
            "every 1d at 03:00, 15:30 (Europe/Berlin)");
  EXPECT_EQ(DescribePolicy(f.policies[0], T("2024-05-01T12:00:00Z")),
            "policy db\n"
            "  description: Databases\n"
            "  targets: volumes with all of backup=nightly, tier=db\n"
            "  schedule nightly: every 1d at 03:00, 15:30 (Europe/Berlin); keep count 10, age 5d\n"
            "    tags: kind=nightly\n"
            "    copies the volume's tags\n"
            "    next run: 2024-05-01T13:30:00Z\n"
            "  schedule monthly: cron '0 4 1 * *' (UTC); keep monthly 12, yearly 3\n"
            "    next run: 2024-06-01T04:00:00Z\n");
}

}  // namespace
}  // namespace blocksnap::policy
