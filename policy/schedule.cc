#include "policy/schedule.h"

#include <algorithm>

namespace blocksnap::policy {

namespace {

using std::chrono::days;
using std::chrono::local_days;
using std::chrono::minutes;

// Day number of Monday 1970-01-05, the anchor of multi-day intervals.
constexpr int64_t kMondayEpoch = 4;
// How far the scans look: covers a Feb 29 cron across a skipped leap year (2100).
constexpr int kMaxScanDays = 366 * 9;
// Readings above the current one can still resolve to earlier instants when the clock fell
// back recently (their first occurrence was before it): LatestRun starts this far above.
minutes FallBackSlack(const TimeZone& zone, TimePoint at) {
  return std::chrono::ceil<minutes>(zone.LargestFallBack(at - days(2), at));
}

constexpr int kDayMinutes = 24 * 60;

// The firing times of one local day, as minutes after midnight. Allocation-free: the
// scheduler asks for these at every wake-up.
class DayPlan {
 public:
  explicit DayPlan(const CreateRule& rule) : rule_(rule) {}

  bool Fires(local_days day) const {
    if (rule_.kind == CreateRule::Kind::kCron) {
      return rule_.cron.MatchesDay(std::chrono::year_month_day(day));
    }
    int64_t every_days = rule_.every.count() / kDayMinutes;
    if (every_days <= 1) return true;
    int64_t n = day.time_since_epoch().count() - kMondayEpoch;
    return ((n % every_days) + every_days) % every_days == 0;
  }

  // The first firing minute >= m, or -1.
  int NextMinute(int m) const {
    if (rule_.kind == CreateRule::Kind::kCron) {
      for (; m < kDayMinutes; ++m) {
        if (!rule_.cron.hours[m / 60]) {
          m = (m / 60) * 60 + 59;  // skip the rest of the hour
          continue;
        }
        if (rule_.cron.minutes[m % 60]) return m;
      }
      return -1;
    }
    int best = -1;
    const int64_t every = rule_.every.count();
    ForEachAnchor([&](int a) {
      int64_t c = a;
      if (every < kDayMinutes) {
        c = a % every;
        if (c < m) c += ((m - c + every - 1) / every) * every;
      }
      if (c >= m && c < kDayMinutes && (best < 0 || c < best)) best = int(c);
    });
    return best;
  }

  // The last firing minute <= m, or -1.
  int PrevMinute(int m) const {
    if (rule_.kind == CreateRule::Kind::kCron) {
      for (; m >= 0; --m) {
        if (!rule_.cron.hours[m / 60]) {
          m = (m / 60) * 60;  // skip to the start of the hour
          continue;
        }
        if (rule_.cron.minutes[m % 60]) return m;
      }
      return -1;
    }
    int best = -1;
    const int64_t every = rule_.every.count();
    ForEachAnchor([&](int a) {
      int64_t c = a;
      if (every < kDayMinutes) {
        c = a % every;
        if (c > m) return;
        c += ((m - c) / every) * every;
      }
      if (c <= m && c > best) best = int(c);
    });
    return best;
  }

 private:
  template <typename F>
  void ForEachAnchor(F f) const {
    if (rule_.times.empty()) {
      f(0);
    } else {
      for (int a : rule_.times) f(a);
    }
  }

  const CreateRule& rule_;
};

}  // namespace

std::optional<TimePoint> NextRun(const CreateRule& rule, TimePoint after) {
  const TimeZone& zone = *rule.zone;
  DayPlan plan(rule);
  // Instants are non-decreasing in local readings under the gap/first-occurrence choices,
  // so scan readings upward from the current one and take the first later slot. (A reading
  // below the current one already happened, or fell into a gap that is over.)
  LocalTime start = zone.ToLocal(after);
  local_days day = std::chrono::floor<days>(start);
  int m = int(std::chrono::floor<minutes>(start - day).count());
  for (int i = 0; i < kMaxScanDays; ++i, day += days(1), m = 0) {
    if (!plan.Fires(day)) continue;
    for (m = plan.NextMinute(m); m >= 0; m = plan.NextMinute(m + 1)) {
      TimePoint t = zone.FromLocal(day + minutes(m));
      if (t > after) return t;
      if (m + 1 >= kDayMinutes) break;
    }
  }
  return std::nullopt;
}

std::optional<TimePoint> LatestRun(const CreateRule& rule, TimePoint at) {
  const TimeZone& zone = *rule.zone;
  DayPlan plan(rule);
  LocalTime start = zone.ToLocal(at) + FallBackSlack(zone, at);
  local_days day = std::chrono::floor<days>(start);
  int m = int(std::chrono::floor<minutes>(start - day).count());
  for (int i = 0; i < kMaxScanDays; ++i, day -= days(1), m = kDayMinutes - 1) {
    if (!plan.Fires(day)) continue;
    for (m = plan.PrevMinute(m); m >= 0; m = plan.PrevMinute(m - 1)) {
      TimePoint t = zone.FromLocal(day + minutes(m));
      if (t <= at) return t;
      if (m == 0) break;
    }
  }
  return std::nullopt;
}

std::optional<TimePoint> DueSlot(const CreateRule& rule, TimePoint last_slot, TimePoint now) {
  std::optional<TimePoint> latest = LatestRun(rule, now);
  if (latest && *latest > last_slot) return latest;
  return std::nullopt;
}

}  // namespace blocksnap::policy
