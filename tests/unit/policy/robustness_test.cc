// Hostile input never crashes or throws: every prefix and many byte mutations of a policy
// file and of a TZif file are either accepted or rejected with a message. Deterministic.
#include <gtest/gtest.h>

#include <random>

#include "policy/parser.h"
#include "policy/planner.h"
#include "tests/unit/policy/test_util.h"

namespace blocksnap::policy {
namespace {

constexpr const char* kPolicy = R"(policies:
  - name: db-nightly
    description: Nightly snapshots of database volumes
    target: {tags: {backup: nightly}, match: any}
    schedules:
      - name: nightly
        create: {every: 24h, times: ["03:00"], timezone: Europe/Berlin}
        retain: {age: 5d, count: 10}
        tags: {kind: "{policy}-{timestamp}"}
        copy_tags: true
      - name: tiers
        create: {cron: "*/30 1-5 * jan-jun mon-fri", timezone: America/New_York}
        retain: {hourly: 2, daily: 3, weekly: 1, monthly: 1, yearly: 1}
)";

void CheckResult(const ParsedFile& f) {
  if (f.ok()) {
    EXPECT_FALSE(f.policies.empty());
  } else {
    EXPECT_TRUE(f.policies.empty());
    for (const Diagnostic& d : f.errors) {
      EXPECT_GE(d.where.line, 1);
      EXPECT_GE(d.where.column, 1);
      EXPECT_FALSE(d.reason.empty());
    }
  }
}

TEST(Robustness, EveryPrefixOfAPolicyFile) {
  std::string text = kPolicy;
  ASSERT_TRUE(ParsePolicyFile("f", text, testing::Zones()).ok());
  for (size_t n = 0; n < text.size(); ++n) {
    CheckResult(ParsePolicyFile("f", text.substr(0, n), testing::Zones()));
  }
}

TEST(Robustness, MutatedPolicyFilesAndTheirPlans) {
  std::mt19937 rng(6);
  const std::string alphabet = "{}[]:,-'\"#&*!|>\n 0123456789abz@/";
  int parsed = 0;
  for (int i = 0; i < 1500; ++i) {
    std::string text = kPolicy;
    int edits = 1 + int(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      size_t pos = rng() % text.size();
      text[pos] = alphabet[rng() % alphabet.size()];
    }
    ParsedFile f = ParsePolicyFile("f", text, testing::Zones());
    CheckResult(f);
    if (f.ok() && i % 10 == 0) {
      // Whatever parses also plans.
      PlanInput in;
      in.policies = f.policies;
      in.volumes = {{"v1", "db1", {{"backup", "nightly"}}}};
      in.start = testing::T("2024-03-01T00:00:00Z");
      in.days = 3;
      MakePlan(in);
      ++parsed;
    }
  }
  EXPECT_GT(parsed, 0);
}

TEST(Robustness, TruncatedAndMutatedTzif) {
  std::string bytes = testing::Zones().Read("America/New_York").value();
  for (size_t n = 0; n < bytes.size(); n += 7) {
    auto tz = TimeZone::FromTzif("x", bytes.substr(0, n));
    if (tz.ok()) (*tz)->TypeAt(testing::T("2024-01-01T00:00:00Z"));
  }
  std::mt19937 rng(8);
  for (int i = 0; i < 2000; ++i) {
    std::string m = bytes;
    m[rng() % m.size()] = char(rng());
    auto tz = TimeZone::FromTzif("x", m);
    if (!tz.ok()) continue;
    (*tz)->FromLocal((*tz)->ToLocal(testing::T("2024-11-03T06:30:00Z")));
    (*tz)->TypeAt(testing::T("2090-01-01T00:00:00Z"));
  }
}

}  // namespace
}  // namespace blocksnap::policy
