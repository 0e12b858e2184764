// Cron expressions: five fields "minute hour day-of-month month day-of-week", each a list of
// `*`, values, ranges `a-b` and steps `*/n`, `a-b/n`, `a/n`; month names jan..dec and day
// names sun..sat (case-insensitive); day-of-week 0 and 7 are Sunday. The macros @yearly
// (@annually), @monthly, @weekly, @daily (@midnight) and @hourly are accepted too.
#pragma once

#include <bitset>
#include <chrono>
#include <string>
#include <string_view>

#include "policy/result.h"

namespace blocksnap::policy {

struct CronSpec {
  std::string text;                  // as written
  std::bitset<60> minutes;           // 0..59
  std::bitset<24> hours;             // 0..23
  std::bitset<32> days;              // 1..31
  std::bitset<13> months;            // 1..12
  std::bitset<7> weekdays;           // 0..6, Sunday = 0
  bool days_restricted = false;      // day-of-month field does not start with '*'
  bool weekdays_restricted = false;  // day-of-week field does not start with '*'

  // Whether the expression fires on this (local) date. As in Vixie cron, when both day
  // fields are restricted a day matches if EITHER matches ("0 0 1 * mon": the 1st and
  // every Monday); otherwise both must. A field starting with '*' ("*/2") is unrestricted:
  // "0 0 */2 * mon" fires on Mondays that are odd days of the month.
  bool MatchesDay(std::chrono::year_month_day date) const;
};

// Parses and checks an expression. Errors name the field: "bad cron expression '0 25 * * *':
// hour field: 25 is out of range 0-23". Expressions that can never fire ("0 0 30 feb *")
// are rejected, and so is a field that selects no value.
Expected<CronSpec> ParseCron(std::string_view text);

}  // namespace blocksnap::policy
