// Retention: which of one schedule's snapshots of one volume to delete.
//
//  - count N: keep the newest N; older ones go ("beyond count 10").
//  - age A: a snapshot older than A goes ("age 5d exceeded (6d old)"), but never the newest
//    snapshot of the set on age alone: a volume that stopped changing keeps one snapshot.
//  - count and age: a snapshot goes when it is beyond the count OR older than the age
//    ("keep 5 days, never more than 10").
//  - tiers: keep the newest snapshot of each of the last N hours/days/ISO weeks/months/years
//    that have snapshots (local time of the zone), as sanoid and restic do; the rest go.
//  - Locked snapshots are never deleted, and do not take a place in the count or a tier.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "policy/model.h"
#include "policy/time_types.h"

namespace blocksnap::policy {

// One completed snapshot as retention sees it.
struct RetainCandidate {
  std::string id;
  TimePoint created{};  // the time tiers and ages use: the slot it was made for, if known
  bool locked = false;
  uint64_t sequence = 0;  // creation order, as SnapshotInfo::sequence
};

// A snapshot to delete and the rule that caused it, for humans and logs.
struct Deletion {
  std::string id;
  std::string reason;
};

// The snapshots of `snapshots` that `rule` deletes at `now`, oldest first. "Newest" means
// the highest sequence; equal sequences (0: unknown) are ranked by creation time, then id. `zone`
// places tier boundaries (the schedule's zone).
std::vector<Deletion> DecideRetention(const RetainRule& rule, const TimeZone& zone,
                                      std::vector<RetainCandidate> snapshots, TimePoint now);

// "count 10, age 5d" / "hourly 24, daily 7": the rule for humans.
std::string DescribeRetention(const RetainRule& rule);

}  // namespace blocksnap::policy
