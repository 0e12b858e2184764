// Policy files: the issue's example and the documented examples parse and mean what they
// say; every malformed case gives its exact "file:line:col: reason".
#include <gtest/gtest.h>

#include "policy/parser.h"
#include "tests/unit/policy/test_util.h"

namespace blocksnap::policy {
namespace {

using namespace std::chrono;

ParsedFile Parse(const std::string& yaml, const std::string& file = "p.yaml") {
  return ParsePolicyFile(file, yaml, testing::Zones());
}

std::vector<std::string> Errors(const std::string& yaml) {
  ParsedFile f = Parse(yaml);
  std::vector<std::string> out;
  for (const Diagnostic& d : f.errors) out.push_back(d.ToString());
  if (!f.ok()) {
    EXPECT_TRUE(f.policies.empty());
  }
  return out;
}

using Msgs = std::vector<std::string>;

// The example of issue 6, verbatim.
constexpr const char* kIssueExample = R"(name: db-nightly
description: Nightly snapshots of database volumes
enabled: true
target:
  tags: {backup: nightly}
schedules:
  - name: nightly
    create: {every: 24h, times: ["03:00"], timezone: UTC}
    retain: {age: 5d, count: 10}
    tags: {kind: nightly}
    copy_tags: true
)";

TEST(Parser, IssueExampleMeansWhatItSays) {
  ParsedFile f = Parse(kIssueExample);
  ASSERT_TRUE(f.ok()) << f.errors[0].ToString();
  ASSERT_EQ(f.policies.size(), 1u);
  const Policy& p = f.policies[0];
  EXPECT_EQ(p.name, "db-nightly");
  EXPECT_EQ(p.description, "Nightly snapshots of database volumes");
  EXPECT_TRUE(p.enabled);
  EXPECT_EQ(p.target_tags, (Tags{{"backup", "nightly"}}));
  EXPECT_EQ(p.match, Match::kAny);
  EXPECT_EQ(p.where.ToString(), "p.yaml:1:7");
  ASSERT_EQ(p.schedules.size(), 1u);
  const Schedule& s = p.schedules[0];
  EXPECT_EQ(s.name, "nightly");
  EXPECT_EQ(s.create.kind, CreateRule::Kind::kInterval);
  EXPECT_EQ(s.create.every, 24h);
  EXPECT_EQ(s.create.times, std::vector<int>{180});
  EXPECT_EQ(s.create.timezone, "UTC");
  EXPECT_EQ(s.create.zone->name(), "UTC");
  EXPECT_EQ(s.retain.age, days(5));
  EXPECT_EQ(s.retain.age_text, "5d");
  EXPECT_EQ(s.retain.count, 10);
  EXPECT_FALSE(s.retain.tiers.has_value());
  EXPECT_EQ(s.tags, (Tags{{"kind", "nightly"}}));
  EXPECT_TRUE(s.copy_tags);
  EXPECT_EQ(s.where.ToString(), "p.yaml:7:11");
}

TEST(Parser, CronTiersAndSeveralPolicies) {
  ParsedFile f = Parse(R"(policies:
  - name: web-hourly
    target:
      tags: {tier: web, env: prod}
      match: all
    schedules:
      - name: hourly
        create: {cron: "0 8-18 * * mon-fri", timezone: Europe/Berlin}
        retain: {hourly: 24, daily: 7, weekly: 4, monthly: 12, yearly: 2}
        tags: {snap: "{volume}-{timestamp}"}
  - name: logs
    enabled: false
    target: {tags: {logs: "yes"}}
    schedules:
      - {name: q, create: {every: 15m}, retain: {age: 12h}}
      - {name: w, create: {every: 1w, times: ["00:30", "12:30"], timezone: America/New_York}, retain: {count: 8}}
)");
  ASSERT_TRUE(f.ok()) << f.errors[0].ToString();
  ASSERT_EQ(f.policies.size(), 2u);
  const Policy& web = f.policies[0];
  EXPECT_EQ(web.match, Match::kAll);
  EXPECT_EQ(web.target_tags.size(), 2u);
  const Schedule& h = web.schedules[0];
  EXPECT_EQ(h.create.kind, CreateRule::Kind::kCron);
  EXPECT_EQ(h.create.cron.text, "0 8-18 * * mon-fri");
  EXPECT_EQ(h.create.zone->name(), "Europe/Berlin");
  ASSERT_TRUE(h.retain.tiers.has_value());
  EXPECT_EQ(h.retain.tiers->hourly, 24);
  EXPECT_EQ(h.retain.tiers->yearly, 2);
  EXPECT_FALSE(h.retain.count.has_value());
  EXPECT_EQ(h.tags.at("snap"), "{volume}-{timestamp}");
  const Policy& logs = f.policies[1];
  EXPECT_FALSE(logs.enabled);
  EXPECT_EQ(logs.target_tags.at("logs"), "yes");
  ASSERT_EQ(logs.schedules.size(), 2u);
  EXPECT_EQ(logs.schedules[0].create.every, 15min);
  EXPECT_EQ(logs.schedules[0].retain.age, 12h);
  EXPECT_EQ(logs.schedules[1].create.every, days(7));
  EXPECT_EQ(logs.schedules[1].create.times, (std::vector<int>{30, 750}));
  EXPECT_EQ(logs.schedules[1].create.zone->name(), "America/New_York");
}

constexpr const char* kHead = "name: p\ntarget: {tags: {a: b}}\nschedules:\n";

TEST(Parser, UnknownKeys) {
  EXPECT_EQ(Errors("name: p\ncolour: blue\ntarget: {tags: {a: b}}\nschedules:\n"
                   "  - {name: s, create: {every: 1h}, retain: {count: 1}}\n"),
            Msgs{"p.yaml:2:1: unknown key 'colour' in policy (allowed: name, description, "
                 "enabled, target, schedules)"});
  EXPECT_EQ(Errors(std::string(kHead) +
                   "  - {name: s, create: {every: 1h, at: 5}, retain: {count: 1}}\n"),
            Msgs{"p.yaml:4:35: unknown key 'at' in create (allowed: every, times, cron, "
                 "timezone)"});
  EXPECT_EQ(Errors(std::string(kHead) + "  - name: s\n    create: {every: 1h}\n"
                                        "    retain: {count: 1}\n    copytags: true\n"),
            Msgs{"p.yaml:7:5: unknown key 'copytags' in schedule (allowed: name, create, "
                 "retain, tags, copy_tags)"});
}

TEST(Parser, WrongTypes) {
  EXPECT_EQ(Errors("name: p\nenabled: yes\ntarget: {tags: {a: b}}\nschedules:\n"
                   "  - {name: s, create: {every: 1h}, retain: {count: 1}}\n"),
            Msgs{"p.yaml:2:10: 'enabled' must be true or false"});
  EXPECT_EQ(Errors("name: p\nenabled: \"true\"\ntarget: {tags: {a: b}}\nschedules:\n"
                   "  - {name: s, create: {every: 1h}, retain: {count: 1}}\n"),
            Msgs{"p.yaml:2:10: 'enabled' must be true or false"});
  EXPECT_EQ(Errors("name: p\ntarget: backup\nschedules:\n"
                   "  - {name: s, create: {every: 1h}, retain: {count: 1}}\n"),
            Msgs{"p.yaml:2:9: target must be a mapping"});
  EXPECT_EQ(Errors("name: p\ntarget: {tags: {a: b}}\nschedules: {name: s}\n"),
            Msgs{"p.yaml:3:12: 'schedules' must be a list"});
  EXPECT_EQ(
      Errors(std::string(kHead) + "  - {name: s, create: {every: 1h}, retain: {count: ten}}\n"),
      Msgs{"p.yaml:4:52: 'count' must be an integer"});
  EXPECT_EQ(
      Errors(std::string(kHead) + "  - {name: [s], create: {every: 1h}, retain: {count: 1}}\n"),
      Msgs{"p.yaml:4:12: 'name' must be a string"});
  EXPECT_EQ(Errors("- name: p\n"),
            Msgs{"p.yaml:1:1: a policy file must hold a policy (a mapping) or a 'policies' list"});
}

TEST(Parser, BadDurations) {
  EXPECT_EQ(
      Errors(std::string(kHead) + "  - {name: s, create: {every: 24x}, retain: {count: 1}}\n"),
      Msgs{"p.yaml:4:31: bad duration '24x': expected a positive integer followed by m, h, "
           "d or w (e.g. 30m, 12h, 5d, 2w)"});
  EXPECT_EQ(Errors(std::string(kHead) + "  - {name: s, create: {every: 1h}, retain: {age: 0d}}\n"),
            Msgs{"p.yaml:4:50: bad duration '0d': expected a positive integer followed by m, h, "
                 "d or w (e.g. 30m, 12h, 5d, 2w)"});
  EXPECT_EQ(Errors(std::string(kHead) + "  - {name: s, create: {every: 7h}, retain: {count: 1}}\n"),
            Msgs{"p.yaml:4:31: 'every' must divide 24h or be a whole number of days, got 7h"});
  EXPECT_EQ(
      Errors(std::string(kHead) + "  - {name: s, create: {every: 36h}, retain: {count: 1}}\n"),
      Msgs{"p.yaml:4:31: 'every' must divide 24h or be a whole number of days, got 36h"});
  EXPECT_EQ(
      Errors(std::string(kHead) + "  - {name: s, create: {every: 53w}, retain: {count: 1}}\n"),
      Msgs{"p.yaml:4:31: 'every' must be at most 52w, got 53w"});
}

TEST(Parser, BadTimesAndCron) {
  EXPECT_EQ(Errors(std::string(kHead) +
                   "  - {name: s, create: {every: 1d, times: ['3:00']}, retain: {count: 1}}\n"),
            Msgs{"p.yaml:4:43: bad time '3:00' in 'times': expected HH:MM from 00:00 to 23:59"});
  EXPECT_EQ(
      Errors(std::string(kHead) + "  - {name: s, create: {every: 1d, times: ['03:00', '03:00']}, "
                                  "retain: {count: 1}}\n"),
      Msgs{"p.yaml:4:52: duplicate time '03:00' in 'times'"});
  EXPECT_EQ(Errors(std::string(kHead) + "  - name: s\n    create:\n      cron: \"0 3 * * funday\"\n"
                                        "    retain: {count: 1}\n"),
            Msgs{"p.yaml:6:13: bad cron expression '0 3 * * funday': day-of-week field: "
                 "unknown value 'funday'"});
  EXPECT_EQ(Errors(std::string(kHead) +
                   "  - {name: s, create: {every: 1d, cron: '@daily'}, retain: {count: 1}}\n"),
            Msgs{"p.yaml:4:35: create takes 'every' or 'cron', not both"});
  EXPECT_EQ(
      Errors(std::string(kHead) +
             "  - {name: s, create: {cron: '@daily', times: ['01:00']}, retain: {count: 1}}\n"),
      Msgs{"p.yaml:4:40: 'times' only goes with 'every', not 'cron'"});
  EXPECT_EQ(
      Errors(std::string(kHead) + "  - {name: s, create: {timezone: UTC}, retain: {count: 1}}\n"),
      Msgs{"p.yaml:4:23: create needs 'every' or 'cron'"});
}

TEST(Parser, CountsOutOfRange) {
  EXPECT_EQ(Errors(std::string(kHead) + "  - {name: s, create: {every: 1h}, retain: {count: 0}}\n"),
            Msgs{"p.yaml:4:52: 'count' must be between 1 and 1000, got 0"});
  EXPECT_EQ(
      Errors(std::string(kHead) + "  - {name: s, create: {every: 1h}, retain: {count: 1001}}\n"),
      Msgs{"p.yaml:4:52: 'count' must be between 1 and 1000, got 1001"});
  EXPECT_EQ(
      Errors(std::string(kHead) + "  - {name: s, create: {every: 1h}, retain: {daily: -1}}\n"),
      Msgs{"p.yaml:4:52: 'daily' must be between 0 and 1000, got -1"});
  EXPECT_EQ(Errors(std::string(kHead) + "  - {name: s, create: {every: 1h}, retain: {daily: 0}}\n"),
            Msgs{"p.yaml:4:44: tiers must keep at least one snapshot"});
  EXPECT_EQ(Errors(std::string(kHead) +
                   "  - {name: s, create: {every: 1h}, retain: {count: 3, daily: 7}}\n"),
            Msgs{"p.yaml:4:55: retain takes 'count'/'age' or tiers, not both"});
  EXPECT_EQ(Errors(std::string(kHead) + "  - {name: s, create: {every: 1h}, retain: {}}\n"),
            Msgs{"p.yaml:4:44: retain needs 'count', 'age' or tiers (hourly, daily, weekly, "
                 "monthly, yearly)"});
}

TEST(Parser, BadTimeZones) {
  EXPECT_EQ(
      Errors(std::string(kHead) +
             "  - {name: s, create: {every: 1h, timezone: Mars/Olympus}, retain: {count: 1}}\n"),
      Msgs{"p.yaml:4:45: unknown time zone 'Mars/Olympus'"});
  EXPECT_EQ(
      Errors(
          std::string(kHead) +
          "  - {name: s, create: {every: 1h, timezone: ../../etc/passwd}, retain: {count: 1}}\n"),
      Msgs{"p.yaml:4:45: invalid time zone name '../../etc/passwd': must not contain "
           "empty, '.' or '..' components"});
  EXPECT_EQ(
      Errors(std::string(kHead) +
             "  - {name: s, create: {every: 1h, timezone: /etc/localtime}, retain: {count: 1}}\n"),
      Msgs{"p.yaml:4:45: invalid time zone name '/etc/localtime': must not be an absolute "
           "path"});
}

TEST(Parser, ScheduleCountsAndDuplicates) {
  EXPECT_EQ(Errors("name: p\ntarget: {tags: {a: b}}\nschedules: []\n"),
            Msgs{"p.yaml:3:12: a policy needs 1 to 4 schedules, got 0"});
  std::string five = kHead;
  for (int i = 0; i < 5; ++i) {
    five += "  - {name: s" + std::to_string(i) + ", create: {every: 1h}, retain: {count: 1}}\n";
  }
  EXPECT_EQ(Errors(five), Msgs{"p.yaml:4:3: a policy needs 1 to 4 schedules, got 5"});
  EXPECT_EQ(Errors(std::string(kHead) + "  - {name: s, create: {every: 1h}, retain: {count: 1}}\n" +
                   "  - {name: s, create: {every: 1d}, retain: {count: 1}}\n"),
            Msgs{"p.yaml:5:12: duplicate schedule name 's' (first defined at line 4)"});
  EXPECT_EQ(Errors("policies:\n"
                   "  - {name: p, target: {tags: {a: b}}, schedules: [{name: s, create: {every: "
                   "1h}, retain: {count: 1}}]}\n"
                   "  - {name: p, target: {tags: {a: c}}, schedules: [{name: s, create: {every: "
                   "1h}, retain: {count: 1}}]}\n"),
            Msgs{"p.yaml:3:12: duplicate policy name 'p' (first defined at line 2)"});
  EXPECT_EQ(Errors("name: p\nname: q\ntarget: {tags: {a: b}}\nschedules:\n"
                   "  - {name: s, create: {every: 1h}, retain: {count: 1}}\n"),
            Msgs{"p.yaml:2:1: duplicate key 'name' in policy"});
}

TEST(Parser, MissingKeysAndBadNames) {
  EXPECT_EQ(Errors("target: {tags: {a: b}}\nschedules:\n"
                   "  - {name: s, create: {every: 1h}, retain: {count: 1}}\n"),
            Msgs{"p.yaml:1:1: policy is missing required key 'name'"});
  EXPECT_EQ(Errors(std::string(kHead) + "  - {name: s, create: {every: 1h}}\n"),
            Msgs{"p.yaml:4:5: schedule is missing required key 'retain'"});
  EXPECT_EQ(Errors("name: db nightly\ntarget: {tags: {a: b}}\nschedules:\n"
                   "  - {name: s, create: {every: 1h}, retain: {count: 1}}\n"),
            Msgs{"p.yaml:1:7: policy name 'db nightly' must be 1 to 64 characters of letters, "
                 "digits and . _ -"});
  EXPECT_EQ(Errors("name: p\ntarget: {tags: {}}\nschedules:\n"
                   "  - {name: s, create: {every: 1h}, retain: {count: 1}}\n"),
            Msgs{"p.yaml:2:16: 'tags' in target must name at least one tag"});
  EXPECT_EQ(Errors("name: p\ntarget: {tags: {a: b}, match: some}\nschedules:\n"
                   "  - {name: s, create: {every: 1h}, retain: {count: 1}}\n"),
            Msgs{"p.yaml:2:31: 'match' must be 'any' or 'all', got 'some'"});
}

TEST(Parser, Tags) {
  EXPECT_EQ(Errors(std::string(kHead) + "  - {name: s, create: {every: 1h}, retain: {count: 1}, "
                                        "tags: {'blocksnap:policy': x}}\n"),
            Msgs{"p.yaml:4:63: tag key 'blocksnap:policy' uses the reserved prefix 'blocksnap:'"});
  EXPECT_EQ(Errors(std::string(kHead) +
                   "  - {name: s, create: {every: 1h}, retain: {count: 1}, tags: {k: '{host}'}}\n"),
            Msgs{"p.yaml:4:66: unknown placeholder '{host}' in tag value (use {policy}, "
                 "{schedule}, {volume} or {timestamp})"});
  EXPECT_EQ(Errors("name: p\ntarget: {tags: {'bad key': b}}\nschedules:\n"
                   "  - {name: s, create: {every: 1h}, retain: {count: 1}}\n"),
            Msgs{"p.yaml:2:17: tag key 'bad key' may only contain letters, digits and . _ : / -"});
}

TEST(Parser, SyntaxErrorsAndEmptyFiles) {
  EXPECT_EQ(Errors("name: p\ntarget: {tags: {a: b}\n"),
            Msgs{"p.yaml:3:1: YAML syntax error: end of map flow not found"});
  EXPECT_EQ(Errors(""), Msgs{"p.yaml:1:1: empty policy file"});
  EXPECT_EQ(Errors("# only a comment\n"), Msgs{"p.yaml:1:1: empty policy file"});
  EXPECT_EQ(Errors(std::string(kIssueExample) + "---\nname: q\n"),
            Msgs{"p.yaml:13:1: a policy file holds one YAML document; use a 'policies' list"});
}

TEST(Parser, ReportsEveryErrorInFileOrder) {
  EXPECT_EQ(Errors("name: p\nenabled: maybe\ntarget: {tags: {a: b}}\nschedules:\n"
                   "  - {name: s, create: {every: 5x}, retain: {count: 0}}\n"),
            (Msgs{"p.yaml:2:10: 'enabled' must be true or false",
                  "p.yaml:5:31: bad duration '5x': expected a positive integer followed by m, h, "
                  "d or w (e.g. 30m, 12h, 5d, 2w)",
                  "p.yaml:5:52: 'count' must be between 1 and 1000, got 0"}));
}

TEST(Parser, DuplicatePolicyNamesAcrossFiles) {
  std::vector<ParsedFile> files;
  files.push_back(Parse(kIssueExample, "a.yaml"));
  files.push_back(Parse(std::string("# again\n") + kIssueExample, "b.yaml"));
  files.push_back(Parse("name: [\n", "c.yaml"));
  files.push_back(
      Parse("name: other\ntarget: {tags: {a: b}}\nschedules:\n"
            "  - {name: s, create: {every: 1h}, retain: {count: 1}}\n",
            "d.yaml"));
  PolicySet set = MergePolicyFiles(std::move(files));
  ASSERT_EQ(set.policies.size(), 2u);
  EXPECT_EQ(set.policies[0].name, "db-nightly");
  EXPECT_EQ(set.policies[0].where.file, "a.yaml");
  EXPECT_EQ(set.policies[1].name, "other");
  ASSERT_EQ(set.errors.size(), 2u);
  EXPECT_EQ(set.errors[0].ToString(),
            "b.yaml:2:7: duplicate policy name 'db-nightly' (first defined at a.yaml:1:7)");
  EXPECT_EQ(set.errors[1].where.file, "c.yaml");
}

// A key with no value is reported at the key, not at the next line where yaml-cpp places
// the missing value.
TEST(Parser, NullValueIsReportedAtItsKey) {
  EXPECT_EQ(Errors("name:\ntarget: {tags: {a: b}}\nschedules:\n"
                   "  - {name: s, create: {every: 1h}, retain: {count: 1}}\n"),
            Msgs{"p.yaml:1:1: 'name' must be a string"});
  EXPECT_EQ(Errors(std::string(kHead) + "  - name: s\n    create:\n      every:\n"
                                        "    retain: {count: 1}\n"),
            Msgs{"p.yaml:6:7: 'every' must be a string"});
}

}  // namespace
}  // namespace blocksnap::policy
