// Coincident schedules of one policy: which are due, the one merged snapshot's tags, and
// retention of a snapshot that belongs to several schedules (the longer retention wins).
#include <gtest/gtest.h>

#include "policy/merge.h"
#include "tests/unit/policy/test_util.h"

namespace blocksnap::policy {
namespace {

using namespace std::chrono;
using testing::T;

Schedule Sched(const std::string& name, const std::string& cron, RetainRule retain, Tags tags,
               bool copy = false) {
  Schedule s;
  s.name = name;
  s.create.kind = CreateRule::Kind::kCron;
  s.create.cron = ParseCron(cron).value();
  s.retain = std::move(retain);
  s.tags = std::move(tags);
  s.copy_tags = copy;
  return s;
}

RetainRule Count(int n) {
  RetainRule r;
  r.count = n;
  return r;
}

// daily at 00:00 (keep 2) and weekly on Monday 00:00 (keep 4).
Policy TwoSchedules() {
  Policy p;
  p.name = "db";
  p.target_tags = {{"backup", "yes"}};
  p.schedules.push_back(Sched("daily", "0 0 * * *", Count(2),
                              {{"kind", "daily"}, {"made-by", "{policy}/{schedule}"}}, true));
  p.schedules.push_back(Sched("weekly", "0 0 * * mon", Count(4),
                              {{"kind", "weekly"}, {"stamp", "{volume}@{timestamp}"}}));
  return p;
}

SchedulerState Since(const Policy& p, TimePoint t) {
  SchedulerState st;
  for (const Schedule& s : p.schedules) st.last_slot[{p.name, s.name}] = t;
  return st;
}

TEST(Merge, BothDueAtTheSameInstant) {
  Policy p = TwoSchedules();
  // 2024-04-01 is a Monday.
  SchedulerState st = Since(p, T("2024-03-31T12:00:00Z"));
  auto due = DueSchedules(p, st, T("2024-04-01T00:00:00Z"));
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(due[0].index, 0u);
  EXPECT_EQ(due[1].index, 1u);
  EXPECT_EQ(ScheduleTagValue(p, due), "daily,weekly");
  // Tuesday: only the daily one.
  st = Since(p, T("2024-04-01T00:00:00Z"));
  due = DueSchedules(p, st, T("2024-04-02T00:00:00Z"));
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(ScheduleTagValue(p, due), "daily");
  // Unknown schedules (no state yet) are never due.
  EXPECT_TRUE(DueSchedules(p, SchedulerState{}, T("2024-04-02T00:00:00Z")).empty());
}

TEST(Merge, MergedTags) {
  Policy p = TwoSchedules();
  VolumeInfo vol{"v1", "db1", {{"backup", "yes"}, {"kind", "volume-kind"}, {"team", "dba"}}};
  std::vector<DueSchedule> due = {{0, T("2024-04-01T00:00:00Z")}, {1, T("2024-04-01T00:00:00Z")}};
  Tags tags = SnapshotTags(p, due, vol, T("2024-04-01T00:00:00Z"));
  EXPECT_EQ(tags, (Tags{{"backup", "yes"},  // copied (daily has copy_tags)
                        {"team", "dba"},
                        {"kind", "daily,weekly"},  // both schedules' values, joined
                        {"made-by", "db/daily,weekly"},
                        {"stamp", "db1@2024-04-01T00:00:00Z"},
                        {"blocksnap:policy", "db"},
                        {"blocksnap:schedule", "daily,weekly"},
                        {"blocksnap:slot", "2024-04-01T00:00:00Z"}}));
  // Only weekly due: no copy_tags.
  Tags weekly = SnapshotTags(p, {{1, T("2024-04-01T00:00:00Z")}}, vol, T("2024-04-01T00:00:00Z"));
  EXPECT_EQ(weekly, (Tags{{"kind", "weekly"},
                          {"stamp", "db1@2024-04-01T00:00:00Z"},
                          {"blocksnap:policy", "db"},
                          {"blocksnap:schedule", "weekly"},
                          {"blocksnap:slot", "2024-04-01T00:00:00Z"}}));
}

SnapshotInfo Snap(const std::string& id, const std::string& created, const std::string& scheds,
                  const std::string& policy = "db") {
  return {
      id, "v1", T(created), {{"blocksnap:policy", policy}, {"blocksnap:schedule", scheds}}, false};
}

TEST(Merge, MultiScheduleSnapshotKeptByTheLongerRetention) {
  Policy p = TwoSchedules();
  std::vector<SnapshotInfo> snaps = {
      Snap("mon1", "2024-04-01T00:00:00Z", "daily,weekly"),
      Snap("tue", "2024-04-02T00:00:00Z", "daily"),
      Snap("wed", "2024-04-03T00:00:00Z", "daily"),
      Snap("thu", "2024-04-04T00:00:00Z", "daily"),
  };
  // daily keeps thu, wed; it votes to delete tue and mon1. weekly keeps mon1.
  auto dels = DecidePolicyRetention(p, snaps, T("2024-04-04T00:00:00Z"));
  ASSERT_EQ(dels.size(), 1u);
  EXPECT_EQ(dels[0].id, "tue");
  EXPECT_EQ(dels[0].reason, "beyond count 2");
  // Five Mondays later weekly's count (4) no longer holds mon1 either.
  for (int w = 1; w <= 4; ++w) {
    std::string day = "2024-04-" + std::string(w == 1   ? "08"
                                               : w == 2 ? "15"
                                               : w == 3 ? "22"
                                                        : "29");
    snaps.push_back(Snap("mon" + std::to_string(w + 1), day + "T00:00:00Z", "daily,weekly"));
  }
  dels = DecidePolicyRetention(p, snaps, T("2024-04-29T00:00:00Z"));
  std::vector<std::string> ids;
  for (const auto& d : dels) ids.push_back(d.id);
  // mon2 and mon3 are beyond daily's count but still within weekly's.
  EXPECT_EQ(ids, (std::vector<std::string>{"mon1", "tue", "wed", "thu"}));
  EXPECT_EQ(dels[0].reason, "daily: beyond count 2; weekly: beyond count 4");
}

TEST(Merge, RetentionOnlyTouchesThisPolicysSnapshots) {
  Policy p = TwoSchedules();
  std::vector<SnapshotInfo> snaps = {
      Snap("other", "2024-03-01T00:00:00Z", "daily", "other-policy"),
      {"manual", "v1", T("2024-03-02T00:00:00Z"), {{"note", "by hand"}}, false},
      Snap("gone-schedule", "2024-03-03T00:00:00Z", "hourly"),  // schedule since removed
      Snap("half-gone", "2024-03-04T00:00:00Z", "daily,hourly"),
      Snap("a", "2024-04-01T00:00:00Z", "daily"),
      Snap("b", "2024-04-02T00:00:00Z", "daily"),
      Snap("c", "2024-04-03T00:00:00Z", "daily"),
  };
  auto dels = DecidePolicyRetention(p, snaps, T("2024-04-03T00:00:00Z"));
  ASSERT_EQ(dels.size(), 1u);
  EXPECT_EQ(dels[0].id, "a");
}

// Three coincident schedules: the distinct values in policy order ("a,b", never "a,b,a"),
// and the first value alone when the whole list would pass 256 characters (not a partial
// join of the first two).
TEST(Merge, JoinedValuesAreDistinctAndWholeOrTheFirst) {
  Policy p;
  p.name = "db";
  p.target_tags = {{"backup", "yes"}};
  const std::string long_b(120, 'b'), long_c(120, 'c');
  p.schedules.push_back(Sched("s1", "0 0 * * *", Count(1), {{"kind", "a"}, {"big", "x"}}));
  p.schedules.push_back(Sched("s2", "0 0 * * *", Count(1), {{"kind", "b"}, {"big", long_b}}));
  p.schedules.push_back(Sched("s3", "0 0 * * *", Count(1), {{"kind", "a"}, {"big", long_c}}));
  VolumeInfo vol{"v1", "db1", {{"backup", "yes"}}};
  const TimePoint at = T("2024-04-01T00:00:00Z");
  Tags tags = SnapshotTags(p, {{0, at}, {1, at}, {2, at}}, vol, at);
  EXPECT_EQ(tags.at("kind"), "a,b");
  // "x," + 120 + "," + 120 = 243 fits; add a fourth and it would not.
  EXPECT_EQ(tags.at("big"), "x," + long_b + "," + long_c);
  p.schedules.push_back(Sched("s4", "0 0 * * *", Count(1), {{"big", std::string(20, 'd')}}));
  tags = SnapshotTags(p, {{0, at}, {1, at}, {2, at}, {3, at}}, vol, at);
  EXPECT_EQ(tags.at("big"), "x");
  EXPECT_EQ(tags.at("blocksnap:schedule"), "s1,s2,s3,s4");
}

// Tiers and ages use the slot a snapshot was made for (blocksnap:slot), not its creation
// time. Monday's 23:50 round was slow and completed on Tuesday at 00:02; Tuesday's 23:50
// round completed at 23:58. By creation time both fall on Tuesday and daily tiers would
// keep only one; by slot they are Monday's and Tuesday's and both stay.
TEST(Merge, TiersUseTheSlotNotTheCreationTime) {
  Policy p;
  p.name = "db";
  p.target_tags = {{"backup", "yes"}};
  RetainRule daily;
  daily.tiers = Tiers{};
  daily.tiers->daily = 7;
  p.schedules.push_back(Sched("nightly", "50 23 * * *", daily, {}));
  auto snap = [](const std::string& id, const std::string& created, const std::string& slot,
                 uint64_t seq) {
    SnapshotInfo s{id,         "v1",
                   T(created), {{"blocksnap:policy", "db"}, {"blocksnap:schedule", "nightly"}},
                   false,      seq};
    if (!slot.empty()) s.tags["blocksnap:slot"] = slot;
    return s;
  };
  std::vector<SnapshotInfo> snaps = {
      snap("mon", "2024-04-02T00:02:00Z", "2024-04-01T23:50:00Z", 1),
      snap("tue", "2024-04-02T23:58:00Z", "2024-04-02T23:50:00Z", 2),
  };
  EXPECT_TRUE(DecidePolicyRetention(p, snaps, T("2024-04-02T23:58:00Z")).empty());
  // Snapshots made before the tag existed fall back to their creation time.
  snaps[0].tags.erase("blocksnap:slot");
  snaps[1].tags.erase("blocksnap:slot");
  auto dels = DecidePolicyRetention(p, snaps, T("2024-04-02T23:58:00Z"));
  ASSERT_EQ(dels.size(), 1u);
  EXPECT_EQ(dels[0].id, "mon");
  // Ages too: a slot 3 days and 1 minute back is older than 3d even if the snapshot
  // completed later.
  RetainRule age;
  age.age = days(3);
  age.age_text = "3d";
  p.schedules[0].retain = age;
  snaps = {snap("old", "2024-04-02T00:02:00Z", "2024-04-01T23:50:00Z", 1),
           snap("new", "2024-04-04T23:58:00Z", "2024-04-04T23:50:00Z", 2)};
  dels = DecidePolicyRetention(p, snaps, T("2024-04-04T23:51:00Z"));
  ASSERT_EQ(dels.size(), 1u);
  EXPECT_EQ(dels[0].reason, "age 3d exceeded (3d old)");
}

}  // namespace
}  // namespace blocksnap::policy
