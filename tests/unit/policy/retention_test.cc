// Retention decisions for one schedule: count, age, both, tiers, locks, the newest.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "policy/retention.h"
#include "tests/unit/policy/test_util.h"

namespace blocksnap::policy {
namespace {

using namespace std::chrono;
using testing::T;

// Snapshots s0 (oldest) .. s{n-1} (newest), one per `step`, the newest at `newest`.
std::vector<RetainCandidate> Series(int n, TimePoint newest, seconds step) {
  std::vector<RetainCandidate> out;
  for (int i = 0; i < n; ++i) {
    out.push_back({"s" + std::to_string(i), newest - step * (n - 1 - i), false});
  }
  return out;
}

std::string Ids(const std::vector<Deletion>& dels) {
  std::string out;
  for (const Deletion& d : dels) out += (out.empty() ? "" : " ") + d.id;
  return out;
}

RetainRule Count(int n) {
  RetainRule r;
  r.count = n;
  return r;
}

RetainRule Age(minutes age, const std::string& text) {
  RetainRule r;
  r.age = age;
  r.age_text = text;
  return r;
}

const TimeZone& Utc() {
  return *TimeZone::Utc();
}

TEST(Retention, CountKeepsTheNewest) {
  TimePoint now = T("2024-05-10T03:00:00Z");
  auto dels = DecideRetention(Count(3), Utc(), Series(5, now, 24h), now);
  EXPECT_EQ(Ids(dels), "s0 s1");  // oldest first
  EXPECT_EQ(dels[0].reason, "beyond count 3");
  EXPECT_TRUE(DecideRetention(Count(5), Utc(), Series(5, now, 24h), now).empty());
}

TEST(Retention, InputOrderDoesNotMatter) {
  TimePoint now = T("2024-05-10T03:00:00Z");
  auto snaps = Series(5, now, 24h);
  std::reverse(snaps.begin(), snaps.end());
  EXPECT_EQ(Ids(DecideRetention(Count(2), Utc(), snaps, now)), "s0 s1 s2");
}

TEST(Retention, CreationOrderOutranksTheClock) {
  // s2 was taken last, after the wall clock stepped back two days: it is the newest.
  TimePoint now = T("2024-05-10T03:00:00Z");
  std::vector<RetainCandidate> snaps = {
      {"s0", now - 24h, false, 1}, {"s1", now, false, 2}, {"s2", now - 48h, false, 3}};
  EXPECT_EQ(Ids(DecideRetention(Count(1), Utc(), snaps, now)), "s0 s1");
  EXPECT_EQ(Ids(DecideRetention(Count(2), Utc(), snaps, now)), "s0");
  // Age still measures the wall clock, and never deletes the newest.
  EXPECT_EQ(Ids(DecideRetention(Age(minutes(36 * 60), "36h"), Utc(), snaps, now)), "");
  EXPECT_EQ(Ids(DecideRetention(Age(minutes(12 * 60), "12h"), Utc(), snaps, now)), "s0");
}

TEST(Retention, AgeDeletesOlderThanTheAge) {
  TimePoint now = T("2024-05-10T03:00:00Z");
  // Daily snapshots, newest 2h old: s0 is 6d2h old, s1 5d2h, s2 4d2h.
  auto dels = DecideRetention(Age(days(5), "5d"), Utc(), Series(7, now - 2h, 24h), now);
  ASSERT_EQ(Ids(dels), "s0 s1");
  EXPECT_EQ(dels[0].reason, "age 5d exceeded (6d old)");
  EXPECT_EQ(dels[1].reason, "age 5d exceeded (5d old)");
  // Exactly the age old is not older than it.
  EXPECT_TRUE(
      DecideRetention(Age(days(5), "5d"), Utc(), Series(1, now - days(5), 1h), now).empty());
}

TEST(Retention, NeverTheNewestOnAgeAlone) {
  TimePoint now = T("2024-05-10T03:00:00Z");
  // All three are far older than 12h: the newest stays.
  auto dels = DecideRetention(Age(12h, "12h"), Utc(), Series(3, now - days(30), 24h), now);
  EXPECT_EQ(Ids(dels), "s0 s1");
  EXPECT_EQ(dels[1].reason, "age 12h exceeded (31d old)");
  EXPECT_TRUE(DecideRetention(Age(1min, "1m"), Utc(), Series(1, now - days(400), 1h), now).empty());
}

TEST(Retention, CountAndAgeEitherDeletes) {
  // "keep 5 days, never more than 10", hourly snapshots: 10 survive the count, and of those
  // the ones older than 5d go too.
  TimePoint now = T("2024-05-10T03:00:00Z");
  RetainRule both = Count(10);
  both.age = days(5);
  both.age_text = "5d";
  auto hourly = DecideRetention(both, Utc(), Series(24, now, 1h), now);
  EXPECT_EQ(hourly.size(), 14u);
  EXPECT_EQ(hourly.back().id, "s13");
  EXPECT_EQ(hourly.back().reason, "beyond count 10");
  // Snapshots every 2 days: age bites first.
  auto sparse = DecideRetention(both, Utc(), Series(6, now, days(2)), now);
  EXPECT_EQ(Ids(sparse), "s0 s1 s2");
  EXPECT_EQ(sparse[2].reason, "age 5d exceeded (6d old)");
}

TEST(Retention, LockedSnapshotsAreNeverDeletedNorCounted) {
  TimePoint now = T("2024-05-10T03:00:00Z");
  auto snaps = Series(5, now, 24h);
  snaps[0].locked = true;  // oldest
  snaps[3].locked = true;
  // Unlocked, newest first: s4 s2 s1 -> count 2 deletes s1 only.
  EXPECT_EQ(Ids(DecideRetention(Count(2), Utc(), snaps, now)), "s1");
  // Age: s0 is old but locked.
  EXPECT_EQ(Ids(DecideRetention(Age(days(2), "2d"), Utc(), snaps, now)), "s1");
  // A locked newest protects nothing else from age: the newest overall is the locked one.
  auto two = Series(2, now - days(10), 24h);
  two[1].locked = true;
  EXPECT_EQ(Ids(DecideRetention(Age(days(1), "1d"), Utc(), two, now)), "s0");
}

TEST(Retention, TiersKeepTheNewestPerPeriod) {
  // Hourly snapshots for 3 days ending 2024-05-10T23:00Z. Keep 6 hourly, 3 daily.
  TimePoint newest = T("2024-05-10T23:00:00Z");
  auto snaps = Series(72, newest, 1h);  // s0 = 2024-05-08T00:00Z
  RetainRule r;
  r.tiers = Tiers{6, 3, 0, 0, 0};
  auto dels = DecideRetention(r, Utc(), snaps, newest);
  // Kept: s66..s71 (the last 6 hours), s47 (05-09 23:00), s23 (05-08 23:00).
  EXPECT_EQ(dels.size(), 72u - 8u);
  for (const Deletion& d : dels) {
    EXPECT_NE(d.id, "s23");
    EXPECT_NE(d.id, "s47");
    EXPECT_NE(d.id, "s66");
    EXPECT_EQ(d.reason, "not kept by any tier (hourly 6, daily 3)");
  }
}

TEST(Retention, TiersFollowTheZonesCalendar) {
  // Daily tier in New York: 03:30Z on 05-10 is still 05-09 local (23:30 EDT).
  auto ny = testing::Zone("America/New_York");
  std::vector<RetainCandidate> snaps = {
      {"a", T("2024-05-09T12:00:00Z"), false},  // 05-09 08:00 EDT
      {"b", T("2024-05-10T03:30:00Z"), false},  // 05-09 23:30 EDT
      {"c", T("2024-05-10T12:00:00Z"), false},  // 05-10 08:00 EDT
  };
  RetainRule r;
  r.tiers = Tiers{0, 2, 0, 0, 0};
  EXPECT_EQ(Ids(DecideRetention(r, *ny, snaps, T("2024-05-10T13:00:00Z"))), "a");
  EXPECT_EQ(Ids(DecideRetention(r, Utc(), snaps, T("2024-05-10T13:00:00Z"))), "b");
}

TEST(Retention, WeeklyMonthlyYearlyTiers) {
  // Daily snapshots over ~2 years; keep 4 weekly, 3 monthly, 2 yearly.
  TimePoint newest = T("2025-12-31T00:00:00Z");
  auto snaps = Series(700, newest, 24h);
  RetainRule r;
  r.tiers = Tiers{0, 0, 4, 3, 2};
  auto dels = DecideRetention(r, Utc(), snaps, newest);
  std::set<std::string> deleted;
  for (const Deletion& d : dels) deleted.insert(d.id);
  std::vector<std::string> kept;
  for (const auto& s : snaps) {
    if (!deleted.count(s.id)) kept.push_back(testing::S(s.created));
  }
  // Weekly: 12-31 (Wed), Sundays 12-28, 12-21, 12-14. Monthly: 12-31, 11-30, 10-31.
  // Yearly: 2025-12-31, 2024-12-31.
  EXPECT_EQ(kept, (std::vector<std::string>{"2024-12-31T00:00:00Z", "2025-10-31T00:00:00Z",
                                            "2025-11-30T00:00:00Z", "2025-12-14T00:00:00Z",
                                            "2025-12-21T00:00:00Z", "2025-12-28T00:00:00Z",
                                            "2025-12-31T00:00:00Z"}));
}

TEST(Retention, Describe) {
  RetainRule both = Count(10);
  both.age = days(5);
  both.age_text = "5d";
  EXPECT_EQ(DescribeRetention(both), "count 10, age 5d");
  RetainRule tiers;
  tiers.tiers = Tiers{24, 7, 0, 12, 1};
  EXPECT_EQ(DescribeRetention(tiers), "hourly 24, daily 7, monthly 12, yearly 1");
}

}  // namespace
}  // namespace blocksnap::policy
