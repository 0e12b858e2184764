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
                        {"blocksnap:schedule", "daily,weekly"}}));
  // Only weekly due: no copy_tags.
  Tags weekly = SnapshotTags(p, {{1, T("2024-04-01T00:00:00Z")}}, vol, T("2024-04-01T00:00:00Z"));
  EXPECT_EQ(weekly, (Tags{{"kind", "weekly"},
                          {"stamp", "db1@2024-04-01T00:00:00Z"},
                          {"blocksnap:policy", "db"},
                          {"blocksnap:schedule", "weekly"}}));
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

}  // namespace
}  // namespace blocksnap::policy
