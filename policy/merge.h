// Coincident schedules. When several schedules of one policy are due in the same scheduler
// step (at the same instant, or all caught up after downtime) the scheduler makes ONE
// snapshot per volume that carries every due schedule's tags, and that snapshot belongs to
// all of them: it is deleted only when each of its schedules' retention would delete it,
// so the longer retention wins.
#pragma once

#include <string>
#include <vector>

#include "policy/inventory.h"
#include "policy/model.h"
#include "policy/retention.h"

namespace blocksnap::policy {

// Whether a volume with `volume_tags` is targeted: any (default) or all of the policy's
// target tags present with equal values.
bool MatchesTarget(const Policy& policy, const Tags& volume_tags);

struct DueSchedule {
  size_t index;    // into policy.schedules
  TimePoint slot;  // the (latest missed) slot it is due for
};

// The schedules of `policy` due at `now` given the last handled slots, in policy order.
// Schedules without state are not due (see SchedulerState).
std::vector<DueSchedule> DueSchedules(const Policy& policy, const SchedulerState& state,
                                      TimePoint now);

// The value of blocksnap:schedule for a snapshot of these schedules: "hourly,daily".
std::string ScheduleTagValue(const Policy& policy, const std::vector<DueSchedule>& due);

// The tags of the one snapshot a step makes of `volume`, lowest precedence first:
//  1. the volume's tags, if any due schedule has copy_tags;
//  2. each due schedule's tags with {policy}, {schedule}, {volume}, {timestamp} expanded
//     ({schedule} is the merged list, {timestamp} the slot); when schedules set one key to
//     different values, the distinct values are joined with ',' in policy order (the first
//     value alone if the join would exceed 256 characters);
//  3. blocksnap:policy, blocksnap:schedule and blocksnap:slot.
Tags SnapshotTags(const Policy& policy, const std::vector<DueSchedule>& due,
                  const VolumeInfo& volume, TimePoint slot);

// The time retention uses for a snapshot: its blocksnap:slot tag, or its creation time when
// it has none (or it does not parse).
TimePoint RetentionTime(const SnapshotInfo& snapshot);

// The schedules a snapshot belongs to under `policy` (from its reserved tags); empty if the
// policy did not create it.
std::vector<std::string> OwningSchedules(const Policy& policy, const SnapshotInfo& snapshot);

// Retention for one volume under one policy: `snapshots` may hold anything (other policies',
// manual ones); only this policy's are considered. Each schedule decides over the snapshots
// it owns; a snapshot goes only if all its schedules vote so, and a snapshot naming a
// schedule the policy no longer has is kept. Reasons of merged snapshots name each
// schedule: "hourly: beyond count 24; daily: age 7d exceeded (8d old)". Oldest first.
std::vector<Deletion> DecidePolicyRetention(const Policy& policy,
                                            const std::vector<SnapshotInfo>& snapshots,
                                            TimePoint now);

}  // namespace blocksnap::policy
