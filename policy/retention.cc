#include "policy/retention.h"

#include <algorithm>
#include <optional>
#include <tuple>

#include "policy/duration.h"

namespace blocksnap::policy {

namespace {

using namespace std::chrono;

// Bucket keys of the tiers, in the zone's local time.
int64_t HourKey(LocalTime t) {
  return floor<hours>(t).time_since_epoch().count();
}
int64_t DayKey(LocalTime t) {
  return floor<days>(t).time_since_epoch().count();
}
int64_t WeekKey(LocalTime t) {
  // ISO weeks start on Monday; day 4 (1970-01-05) was a Monday.
  int64_t d = DayKey(t) - 4;
  return d >= 0 ? d / 7 : (d - 6) / 7;
}
int64_t MonthKey(LocalTime t) {
  year_month_day ymd{floor<days>(t)};
  return int64_t(int(ymd.year())) * 12 + unsigned(ymd.month());
}
int64_t YearKey(LocalTime t) {
  return int(year_month_day{floor<days>(t)}.year());
}

std::vector<bool> TierKeep(const Tiers& tiers, const TimeZone& zone,
                           const std::vector<RetainCandidate>& newest_first) {
  std::vector<bool> keep(newest_first.size(), false);
  struct Tier {
    int count;
    int64_t (*key)(LocalTime);
  };
  const Tier list[] = {{tiers.hourly, HourKey},
                       {tiers.daily, DayKey},
                       {tiers.weekly, WeekKey},
                       {tiers.monthly, MonthKey},
                       {tiers.yearly, YearKey}};
  for (const Tier& tier : list) {
    int kept = 0;
    std::optional<int64_t> last;
    for (size_t i = 0; i < newest_first.size() && kept < tier.count; ++i) {
      int64_t key = tier.key(zone.ToLocal(newest_first[i].created));
      if (last && *last == key) continue;
      last = key;
      keep[i] = true;
      ++kept;
    }
  }
  return keep;
}

}  // namespace

std::string DescribeRetention(const RetainRule& rule) {
  std::string out;
  auto add = [&](const std::string& part) { out += (out.empty() ? "" : ", ") + part; };
  if (rule.count) add("count " + std::to_string(*rule.count));
  if (rule.age) add("age " + rule.age_text);
  if (rule.tiers) {
    const Tiers& t = *rule.tiers;
    if (t.hourly) add("hourly " + std::to_string(t.hourly));
    if (t.daily) add("daily " + std::to_string(t.daily));
    if (t.weekly) add("weekly " + std::to_string(t.weekly));
    if (t.monthly) add("monthly " + std::to_string(t.monthly));
    if (t.yearly) add("yearly " + std::to_string(t.yearly));
  }
  return out;
}

std::vector<Deletion> DecideRetention(const RetainRule& rule, const TimeZone& zone,
                                      std::vector<RetainCandidate> snapshots, TimePoint now) {
  std::sort(snapshots.begin(), snapshots.end(),
            [](const RetainCandidate& a, const RetainCandidate& b) {
              return std::tie(a.sequence, a.created, a.id) > std::tie(b.sequence, b.created, b.id);
            });
  // The newest of the whole set is never deleted on age alone (even if it is locked, it is
  // the one that stays).
  std::vector<RetainCandidate> open;  // unlocked, newest first
  for (const RetainCandidate& s : snapshots) {
    if (!s.locked) open.push_back(s);
  }
  const std::string newest_id = snapshots.empty() ? "" : snapshots.front().id;
  std::vector<Deletion> out;
  std::vector<bool> tier_keep;
  if (rule.tiers) tier_keep = TierKeep(*rule.tiers, zone, open);
  for (size_t i = 0; i < open.size(); ++i) {
    const RetainCandidate& s = open[i];
    if (rule.tiers) {
      if (!tier_keep[i]) {
        out.push_back({s.id, "not kept by any tier (" + DescribeRetention(rule) + ")"});
      }
      continue;
    }
    if (rule.count && i >= size_t(*rule.count)) {
      out.push_back({s.id, "beyond count " + std::to_string(*rule.count)});
      continue;
    }
    if (rule.age && s.id != newest_id) {
      seconds age = now - s.created;
      if (age > duration_cast<seconds>(*rule.age)) {
        out.push_back({s.id, "age " + rule.age_text + " exceeded (" + FormatAge(age) + " old)"});
      }
    }
  }
  std::reverse(out.begin(), out.end());
  return out;
}

}  // namespace blocksnap::policy
