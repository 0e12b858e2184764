// What the scheduler sees of the world and of its own past: volumes, snapshots, and the last
// slot each schedule handled. Plain data, filled by the daemon (or the planner).
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <string>

#include "policy/tags.h"
#include "policy/time_types.h"

namespace blocksnap::policy {

struct VolumeInfo {
  std::string id;
  std::string name;
  Tags tags;
};

// A completed snapshot. Pending and failed snapshots are not passed to the policy code.
struct SnapshotInfo {
  std::string id;
  std::string volume_id;
  TimePoint created{};
  Tags tags;  // including the reserved blocksnap:policy / blocksnap:schedule tags
  bool locked = false;
  // Creation order: a later snapshot has a higher number (0: unknown). Retention ranks
  // snapshots by it before `created`, so that a wall clock stepped backwards cannot make the
  // snapshot just taken look like the oldest one.
  uint64_t sequence = 0;
};

struct ScheduleKey {
  std::string policy;
  std::string schedule;
  auto operator<=>(const ScheduleKey&) const = default;
};

// Persisted by the daemon (RocksDB meta "policy/<policy>/<schedule>"): the latest slot each
// schedule has handled. A schedule without an entry has never run: the first step records
// "now" and does not catch up on slots from before the policy existed.
struct SchedulerState {
  std::map<ScheduleKey, TimePoint> last_slot;
};

}  // namespace blocksnap::policy
