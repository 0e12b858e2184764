// Cron expression parsing and day matching.
#include <gtest/gtest.h>

#include "policy/cron.h"

namespace blocksnap::policy {
namespace {

using namespace std::chrono;

TEST(Cron, ParsesListsRangesStepsAndNames) {
  auto c = ParseCron("0,30 8-18/2 * JAN-mar,dec mon-fri");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_TRUE(c->minutes[0] && c->minutes[30] && !c->minutes[15]);
  EXPECT_TRUE(c->hours[8] && c->hours[10] && c->hours[18] && !c->hours[9] && !c->hours[20]);
  EXPECT_TRUE(c->months[1] && c->months[3] && c->months[12] && !c->months[4]);
  EXPECT_TRUE(c->weekdays[1] && c->weekdays[5] && !c->weekdays[0] && !c->weekdays[6]);
  EXPECT_FALSE(c->days_restricted);
  EXPECT_TRUE(c->weekdays_restricted);
}

TEST(Cron, StepsFromAValueAndSundayAsSeven) {
  auto c = ParseCron("5/20 */6 1 * 7");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->minutes[5] && c->minutes[25] && c->minutes[45] && !c->minutes[0]);
  EXPECT_EQ(c->hours.count(), 4u);
  EXPECT_TRUE(c->weekdays[0]);
  EXPECT_EQ(c->weekdays.count(), 1u);
}

TEST(Cron, Macros) {
  auto c = ParseCron("@daily");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->text, "@daily");
  EXPECT_EQ(c->minutes.count(), 1u);
  EXPECT_EQ(c->hours.count(), 1u);
  EXPECT_TRUE(ParseCron("@hourly").ok());
  EXPECT_TRUE(ParseCron("@weekly").ok());
  EXPECT_TRUE(ParseCron("@monthly").ok());
  EXPECT_TRUE(ParseCron("@yearly").ok());
}

TEST(Cron, DayFieldsOrWhenBothRestricted) {
  auto c = ParseCron("0 0 1 * mon");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->MatchesDay(2024y / April / 1));  // the 1st (a Monday too)
  EXPECT_TRUE(c->MatchesDay(2024y / May / 1));    // the 1st, a Wednesday
  EXPECT_TRUE(c->MatchesDay(2024y / May / 6));    // a Monday
  EXPECT_FALSE(c->MatchesDay(2024y / May / 7));
  auto only_dow = ParseCron("0 0 * * mon");
  EXPECT_FALSE(only_dow->MatchesDay(2024y / May / 1));
  EXPECT_TRUE(only_dow->MatchesDay(2024y / May / 6));
}

TEST(Cron, ErrorsNameTheField) {
  EXPECT_EQ(ParseCron("0 25 * * *").error().message,
            "bad cron expression '0 25 * * *': hour field: 25 is out of range 0-23");
  EXPECT_EQ(ParseCron("60 * * * *").error().message,
            "bad cron expression '60 * * * *': minute field: 60 is out of range 0-59");
  EXPECT_EQ(ParseCron("* * * * * *").error().message,
            "bad cron expression '* * * * * *': expected 5 fields (minute hour day-of-month "
            "month day-of-week), got 6");
  EXPECT_EQ(ParseCron("0 0 * foo *").error().message,
            "bad cron expression '0 0 * foo *': month field: unknown value 'foo'");
  EXPECT_EQ(ParseCron("0 0 0 * *").error().message,
            "bad cron expression '0 0 0 * *': day-of-month field: 0 is out of range 1-31");
  EXPECT_EQ(ParseCron("0 0 * * 8").error().message,
            "bad cron expression '0 0 * * 8': day-of-week field: 8 is out of range 0-7");
  EXPECT_EQ(ParseCron("0 10-2 * * *").error().message,
            "bad cron expression '0 10-2 * * *': hour field: range '10-2' runs backwards");
  EXPECT_EQ(ParseCron("*/0 * * * *").error().message,
            "bad cron expression '*/0 * * * *': minute field: bad step: 0 is out of range 1-60");
  EXPECT_EQ(ParseCron("0 0 30 feb *").error().message,
            "bad cron expression '0 0 30 feb *': no selected month has the selected days");
  EXPECT_EQ(ParseCron("1,,2 * * * *").error().message,
            "bad cron expression '1,,2 * * * *': minute field: empty value");
  EXPECT_TRUE(ParseCron("0 0 29 2 *").ok());  // leap days exist
  EXPECT_TRUE(ParseCron("0 0 31 * *").ok());
}

// Vixie cron and cronie treat a day field that starts with '*' ("*/2") as unrestricted, so
// the other day field alone decides (AND), not the OR of two restricted fields.
TEST(Cron, StarStepDayFieldIsUnrestricted) {
  auto c = ParseCron("0 0 */2 * mon");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_FALSE(c->days_restricted);
  EXPECT_TRUE(c->weekdays_restricted);
  // 2024-04-01 is a Monday (odd day): fires. 2024-04-08: Monday, even day: does not.
  EXPECT_TRUE(c->MatchesDay(year_month_day{year{2024}, April, day{1}}));
  EXPECT_FALSE(c->MatchesDay(year_month_day{year{2024}, April, day{8}}));
  // 2024-04-03 is an odd day but a Wednesday: does not.
  EXPECT_FALSE(c->MatchesDay(year_month_day{year{2024}, April, day{3}}));
  // "*/1" in the weekday field is unrestricted too: the day-of-month alone decides.
  auto w = ParseCron("0 0 15 * */1");
  ASSERT_TRUE(w.ok());
  EXPECT_FALSE(w->weekdays_restricted);
  EXPECT_TRUE(w->MatchesDay(year_month_day{year{2024}, April, day{15}}));
  EXPECT_FALSE(w->MatchesDay(year_month_day{year{2024}, April, day{16}}));
}

// "7/2" starts at Sunday written as 7: Sunday, Tuesday, Thursday, Saturday. It used to
// select nothing (the range 7..6) and was accepted although it could never fire.
TEST(Cron, SundayAsSevenWithAStep) {
  auto c = ParseCron("0 0 * * 7/2");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->weekdays.to_string(), "1010101");  // bits 6..0: sat, thu, tue, sun
  EXPECT_TRUE(c->MatchesDay(year_month_day{year{2024}, March, day{31}}));  // Sunday
  EXPECT_FALSE(c->MatchesDay(year_month_day{year{2024}, April, day{1}}));  // Monday
  EXPECT_TRUE(c->MatchesDay(year_month_day{year{2024}, April, day{2}}));   // Tuesday
}

}  // namespace
}  // namespace blocksnap::policy
