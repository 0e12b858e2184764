// Schedule math: when a create rule fires, on the wall clock of its time zone.
//
// Rules, in the schedule's zone:
//  - interval below a day (must divide 24h): the anchors in `times` (default 00:00) plus
//    every multiple of the interval, wrapped around the day: every 12h at 03:00 -> 03:00, 15:00.
//  - interval of whole days or weeks: at the anchors, on every N-th day counted from Monday
//    1970-01-05 (so "every: 1w" fires on Mondays, "every: 2d" on alternate days).
//  - cron: as cron does, with the Vixie day-of-month/day-of-week OR rule.
//  - A local time that does not exist (spring forward) fires at the first instant after the
//    gap, i.e. at the transition; several such times coalesce into that one run.
//  - A local time that occurs twice (fall back) fires once, at its first occurrence.
#pragma once

#include <optional>

#include "policy/model.h"
#include "policy/time_types.h"

namespace blocksnap::policy {

// The first slot strictly after `after`, or nullopt if none within about nine years (cannot
// happen for validated rules).
std::optional<TimePoint> NextRun(const CreateRule& rule, TimePoint after);
inline std::optional<TimePoint> NextRun(const Schedule& s, TimePoint after) {
  return NextRun(s.create, after);
}

// The latest slot at or before `at`, or nullopt.
std::optional<TimePoint> LatestRun(const CreateRule& rule, TimePoint at);

// Catch-up: the one slot to run now, given the last slot handled. It is the LATEST slot in
// (last_slot, now], or nullopt when no slot was missed: after any downtime a schedule runs
// once, never once per missed slot.
std::optional<TimePoint> DueSlot(const CreateRule& rule, TimePoint last_slot, TimePoint now);
inline std::optional<TimePoint> DueSlot(const Schedule& s, TimePoint last_slot, TimePoint now) {
  return DueSlot(s.create, last_slot, now);
}

}  // namespace blocksnap::policy
