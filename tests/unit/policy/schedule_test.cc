// NextRun / LatestRun / DueSlot for intervals, anchored times and cron, in UTC,
// Europe/Berlin and America/New_York, across month ends, leap days and DST changes.
#include <gtest/gtest.h>

#include "policy/schedule.h"
#include "tests/unit/policy/test_util.h"

namespace blocksnap::policy {
namespace {

using namespace std::chrono;
using testing::S;
using testing::T;
using testing::Zone;

CreateRule Every(minutes every, std::vector<int> times = {}, const std::string& zone = "UTC") {
  CreateRule r;
  r.kind = CreateRule::Kind::kInterval;
  r.every = every;
  r.times = std::move(times);
  r.timezone = zone;
  r.zone = Zone(zone);
  return r;
}

CreateRule Cron(const std::string& expr, const std::string& zone = "UTC") {
  CreateRule r;
  r.kind = CreateRule::Kind::kCron;
  r.cron = ParseCron(expr).value();
  r.timezone = zone;
  r.zone = Zone(zone);
  return r;
}

std::string Next(const CreateRule& r, const std::string& after) {
  auto t = NextRun(r, T(after));
  return t ? S(*t) : "never";
}

// The next n slots after `after`, space-separated.
std::string Series(const CreateRule& r, const std::string& after, int n) {
  std::string out;
  TimePoint t = T(after);
  for (int i = 0; i < n; ++i) {
    auto next = NextRun(r, t);
    if (!next) return out + "never";
    t = *next;
    out += (i ? " " : "") + S(t);
  }
  return out;
}

TEST(Schedule, IntervalAlignedToLocalMidnight) {
  auto r = Every(6h);
  EXPECT_EQ(Series(r, "2024-05-01T05:00:00Z", 3),
            "2024-05-01T06:00:00Z 2024-05-01T12:00:00Z 2024-05-01T18:00:00Z");
  EXPECT_EQ(Next(r, "2024-05-01T06:00:00Z"), "2024-05-01T12:00:00Z");  // strictly after
  EXPECT_EQ(Next(Every(30min), "2024-05-01T23:45:00Z"), "2024-05-02T00:00:00Z");
  EXPECT_EQ(Next(Every(24h), "2024-05-01T00:00:00Z"), "2024-05-02T00:00:00Z");
}

TEST(Schedule, IntervalWithTimes) {
  EXPECT_EQ(Series(Every(24h, {3 * 60}), "2024-05-01T04:00:00Z", 2),
            "2024-05-02T03:00:00Z 2024-05-03T03:00:00Z");
  // every 12h anchored at 03:00 -> 03:00 and 15:00.
  EXPECT_EQ(Series(Every(12h, {3 * 60}), "2024-05-01T00:00:00Z", 3),
            "2024-05-01T03:00:00Z 2024-05-01T15:00:00Z 2024-05-02T03:00:00Z");
  EXPECT_EQ(Series(Every(24h, {3 * 60, 15 * 60 + 30}), "2024-05-01T03:00:00Z", 2),
            "2024-05-01T15:30:00Z 2024-05-02T03:00:00Z");
}

TEST(Schedule, MultiDayIntervalsCountFromAMonday) {
  // 2024-04-01 is a Monday: weekly runs fall on Mondays.
  EXPECT_EQ(Series(Every(days(7), {60}), "2024-03-27T12:00:00Z", 2),
            "2024-04-01T01:00:00Z 2024-04-08T01:00:00Z");
  // Every 2 days from Monday 1970-01-05: 2024-01-02 is on the grid, 2024-01-01 is not.
  EXPECT_EQ(Series(Every(days(2)), "2023-12-31T12:00:00Z", 2),
            "2024-01-02T00:00:00Z 2024-01-04T00:00:00Z");
}

TEST(Schedule, CronMonthEnds) {
  // The 31st skips months without one.
  EXPECT_EQ(Series(Cron("0 0 31 * *"), "2024-01-31T00:00:00Z", 3),
            "2024-03-31T00:00:00Z 2024-05-31T00:00:00Z 2024-07-31T00:00:00Z");
  EXPECT_EQ(Next(Cron("0 0 30 * *"), "2024-01-30T00:00:00Z"), "2024-03-30T00:00:00Z");
  EXPECT_EQ(Next(Cron("59 23 31 12 *"), "2024-06-01T00:00:00Z"), "2024-12-31T23:59:00Z");
}

TEST(Schedule, CronLeapDays) {
  EXPECT_EQ(Next(Cron("0 12 29 2 *"), "2024-03-01T00:00:00Z"), "2028-02-29T12:00:00Z");
  EXPECT_EQ(Next(Cron("0 12 29 2 *"), "2024-01-01T00:00:00Z"), "2024-02-29T12:00:00Z");
  // 2100 is not a leap year: from 2097 the next Feb 29 is in 2104.
  EXPECT_EQ(Next(Cron("0 0 29 feb *"), "2097-01-01T00:00:00Z"), "2104-02-29T00:00:00Z");
  EXPECT_EQ(Next(Cron("0 0 * 2 *"), "2023-02-28T00:00:00Z"), "2024-02-01T00:00:00Z");
  EXPECT_EQ(Next(Cron("0 0 * 2 *"), "2024-02-28T00:00:00Z"), "2024-02-29T00:00:00Z");
}

TEST(Schedule, CronWeekdaysAndSteps) {
  // 2024-05-03 is a Friday: the next weekday 08:15 is Monday.
  EXPECT_EQ(Next(Cron("15 8 * * mon-fri"), "2024-05-03T09:00:00Z"), "2024-05-06T08:15:00Z");
  EXPECT_EQ(Series(Cron("*/20 9 * * *"), "2024-05-03T08:59:00Z", 4),
            "2024-05-03T09:00:00Z 2024-05-03T09:20:00Z 2024-05-03T09:40:00Z "
            "2024-05-04T09:00:00Z");
}

TEST(Schedule, BerlinSpringForwardRunsAtTheEndOfTheGap) {
  // 02:30 does not exist on 2024-03-31: it runs at 03:00 CEST = 01:00 UTC.
  auto r = Every(24h, {2 * 60 + 30}, "Europe/Berlin");
  EXPECT_EQ(Series(r, "2024-03-30T12:00:00Z", 3),
            "2024-03-31T01:00:00Z 2024-04-01T00:30:00Z 2024-04-02T00:30:00Z");
  EXPECT_EQ(Next(Cron("30 2 * * *", "Europe/Berlin"), "2024-03-30T12:00:00Z"),
            "2024-03-31T01:00:00Z");
}

TEST(Schedule, BerlinFallBackRunsOnceAtTheFirstOccurrence) {
  auto r = Every(24h, {2 * 60 + 30}, "Europe/Berlin");
  EXPECT_EQ(Series(r, "2024-10-26T12:00:00Z", 2), "2024-10-27T00:30:00Z 2024-10-28T01:30:00Z");
}

TEST(Schedule, BerlinHourlyAcrossBothChanges) {
  auto hourly = Every(1h, {}, "Europe/Berlin");
  // Spring: 02:00 is skipped and coalesces with 03:00 CEST (01:00 UTC).
  EXPECT_EQ(Series(hourly, "2024-03-30T23:30:00Z", 3),
            "2024-03-31T00:00:00Z 2024-03-31T01:00:00Z 2024-03-31T02:00:00Z");
  // Autumn: the wall clock reads 02:00 twice; it runs at the first, so two real hours pass.
  EXPECT_EQ(Series(hourly, "2024-10-26T23:30:00Z", 3),
            "2024-10-27T00:00:00Z 2024-10-27T02:00:00Z 2024-10-27T03:00:00Z");
}

TEST(Schedule, NewYorkCronAcrossDst) {
  // Every 15 minutes: 02:00..02:45 EST do not exist on 2024-03-10 and coalesce into one run
  // at 03:00 EDT (07:00 UTC).
  auto quarter = Cron("*/15 * * * *", "America/New_York");
  EXPECT_EQ(Series(quarter, "2024-03-10T06:40:00Z", 3),
            "2024-03-10T06:45:00Z 2024-03-10T07:00:00Z 2024-03-10T07:15:00Z");
  // 01:30 happens twice on 2024-11-03: one run, at 01:30 EDT (05:30 UTC).
  auto r = Cron("30 1 * * *", "America/New_York");
  EXPECT_EQ(Series(r, "2024-11-02T12:00:00Z", 3),
            "2024-11-03T05:30:00Z 2024-11-04T06:30:00Z 2024-11-05T06:30:00Z");
  // Inside the repeated hour (01:40 EST, second pass) 01:45 already ran (at 05:45 UTC).
  EXPECT_EQ(Next(quarter, "2024-11-03T06:40:00Z"), "2024-11-03T07:00:00Z");
  EXPECT_EQ(Next(Cron("45 1 * * *", "America/New_York"), "2024-11-03T06:40:00Z"),
            "2024-11-04T06:45:00Z");
}

TEST(Schedule, LatestRun) {
  auto r = Every(24h, {3 * 60});
  EXPECT_EQ(S(*LatestRun(r, T("2024-05-03T10:00:00Z"))), "2024-05-03T03:00:00Z");
  EXPECT_EQ(S(*LatestRun(r, T("2024-05-03T03:00:00Z"))), "2024-05-03T03:00:00Z");
  EXPECT_EQ(S(*LatestRun(r, T("2024-05-03T02:59:59Z"))), "2024-05-02T03:00:00Z");
  auto berlin = Every(24h, {2 * 60 + 30}, "Europe/Berlin");
  EXPECT_EQ(S(*LatestRun(berlin, T("2024-03-31T05:00:00Z"))), "2024-03-31T01:00:00Z");
  EXPECT_EQ(S(*LatestRun(berlin, T("2024-10-27T05:00:00Z"))), "2024-10-27T00:30:00Z");
}

TEST(Schedule, LatestRunInsideARepeatedHour) {
  // At 01:10 EST (06:10 UTC, the second pass of 01:xx) the latest 01:45 slot is the first
  // pass's, 05:45 UTC, although 01:45 reads later than the clock does now.
  auto r = Cron("45 1 * * *", "America/New_York");
  EXPECT_EQ(S(*LatestRun(r, T("2024-11-03T06:10:00Z"))), "2024-11-03T05:45:00Z");
  EXPECT_FALSE(DueSlot(r, T("2024-11-03T05:45:00Z"), T("2024-11-03T06:50:00Z")).has_value());
  auto hourly = Every(1h, {}, "Europe/Berlin");
  EXPECT_EQ(S(*LatestRun(hourly, T("2024-10-27T01:30:00Z"))), "2024-10-27T00:00:00Z");
  EXPECT_FALSE(DueSlot(hourly, T("2024-10-27T00:00:00Z"), T("2024-10-27T01:59:59Z")).has_value());
}

TEST(Schedule, CatchUpAfterDowntimeIsOneSlot) {
  auto daily = Every(24h, {3 * 60});
  // Down from Monday 03:00 to Friday 10:00: four slots missed, one run, for the latest.
  auto due = DueSlot(daily, T("2024-04-01T03:00:00Z"), T("2024-04-05T10:00:00Z"));
  ASSERT_TRUE(due.has_value());
  EXPECT_EQ(S(*due), "2024-04-05T03:00:00Z");
  // Once that slot is recorded nothing is due until the next one.
  EXPECT_FALSE(DueSlot(daily, *due, T("2024-04-05T10:00:01Z")).has_value());
  EXPECT_FALSE(DueSlot(daily, *due, T("2024-04-06T02:59:59Z")).has_value());
  EXPECT_EQ(S(*DueSlot(daily, *due, T("2024-04-06T03:00:00Z"))), "2024-04-06T03:00:00Z");
  // A minute-ly cron after a month of downtime is still one slot.
  auto minutely = Cron("* * * * *");
  EXPECT_EQ(S(*DueSlot(minutely, T("2024-01-01T00:00:00Z"), T("2024-02-01T12:34:56Z"))),
            "2024-02-01T12:34:00Z");
}

// Cron day fields that start with '*' and Sunday written as 7 with a step: each schedule
// fires when it says (they used to fire on every Monday, and never, respectively).
TEST(Schedule, CronStarStepDaysAndSundayAsSevenStep) {
  // Mondays on odd days of the month only. 2024-04-01 Mon (odd), 04-08 (even), 04-15 (odd).
  EXPECT_EQ(Next(Cron("0 0 */2 * mon"), "2024-03-31T12:00:00Z"), "2024-04-01T00:00:00Z");
  EXPECT_EQ(Next(Cron("0 0 */2 * mon"), "2024-04-01T00:00:00Z"), "2024-04-15T00:00:00Z");
  // Sunday, Tuesday, Thursday, Saturday. 2024-03-31 is a Sunday.
  EXPECT_EQ(Next(Cron("0 0 * * 7/2"), "2024-03-30T12:00:00Z"), "2024-03-31T00:00:00Z");
  EXPECT_EQ(Next(Cron("0 0 * * 7/2"), "2024-03-31T00:00:00Z"), "2024-04-02T00:00:00Z");
}

}  // namespace
}  // namespace blocksnap::policy
