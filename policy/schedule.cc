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
// Local readings this far around the start are scanned as well: it covers fall-back
// transitions (a reading may resolve to an instant before the current reading) of up to 3h.
constexpr minutes kSlack{180};

// The firing times of one local day, as minutes after midnight, ascending.
class DayPlan {
 public:
  explicit DayPlan(const CreateRule& rule) : rule_(rule) {
    if (rule.kind == CreateRule::Kind::kCron) {
      for (int h = 0; h < 24; ++h) {
        for (int m = 0; m < 60; ++m) {
          if (rule.cron.hours[h] && rule.cron.minutes[m]) minutes_.push_back(h * 60 + m);
        }
      }
      return;
    }
    std::vector<int> anchors = rule.times.empty() ? std::vector<int>{0} : rule.times;
    int64_t every = rule.every.count();
    if (every < 24 * 60) {
      for (int a : anchors) {
        for (int64_t m = a % every; m < 24 * 60; m += every) minutes_.push_back(int(m));
      }
    } else {
      minutes_ = anchors;
    }
    std::sort(minutes_.begin(), minutes_.end());
    minutes_.erase(std::unique(minutes_.begin(), minutes_.end()), minutes_.end());
  }

  bool Fires(local_days day) const {
    if (rule_.kind == CreateRule::Kind::kCron) {
      return rule_.cron.MatchesDay(std::chrono::year_month_day(day));
    }
    int64_t every_days = rule_.every.count() / (24 * 60);
    if (every_days <= 1) return true;
    int64_t n = day.time_since_epoch().count() - kMondayEpoch;
    return ((n % every_days) + every_days) % every_days == 0;
  }

  const std::vector<int>& minutes() const { return minutes_; }

 private:
  const CreateRule& rule_;
  std::vector<int> minutes_;
};

}  // namespace

std::optional<TimePoint> NextRun(const CreateRule& rule, TimePoint after) {
  const TimeZone& zone = *rule.zone;
  DayPlan plan(rule);
  if (plan.minutes().empty()) return std::nullopt;
  // Instants are non-decreasing in local readings under the gap/first-occurrence choices,
  // so scan readings upward from just before the current one and take the first later slot.
  LocalTime start = zone.ToLocal(after) - kSlack;
  local_days day = std::chrono::floor<days>(start);
  int first_minute = int(std::chrono::floor<minutes>(start - day).count());
  for (int i = 0; i < kMaxScanDays; ++i, day += days(1)) {
    if (!plan.Fires(day)) continue;
    const auto& mins = plan.minutes();
    auto it = i == 0 ? std::lower_bound(mins.begin(), mins.end(), first_minute) : mins.begin();
    for (; it != mins.end(); ++it) {
      TimePoint t = zone.FromLocal(day + minutes(*it));
      if (t > after) return t;
    }
  }
  return std::nullopt;
}

std::optional<TimePoint> LatestRun(const CreateRule& rule, TimePoint at) {
  const TimeZone& zone = *rule.zone;
  DayPlan plan(rule);
  if (plan.minutes().empty()) return std::nullopt;
  LocalTime start = zone.ToLocal(at) + kSlack;
  local_days day = std::chrono::floor<days>(start);
  int last_minute = int(std::chrono::floor<minutes>(start - day).count());
  for (int i = 0; i < kMaxScanDays; ++i, day -= days(1)) {
    if (!plan.Fires(day)) continue;
    const auto& mins = plan.minutes();
    auto it = i == 0 ? std::upper_bound(mins.begin(), mins.end(), last_minute) : mins.end();
    while (it != mins.begin()) {
      --it;
      TimePoint t = zone.FromLocal(day + minutes(*it));
      if (t <= at) return t;
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
