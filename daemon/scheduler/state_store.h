// Persistence of the scheduler's state (policy::SchedulerState) in RocksDB: one meta key
// "policy/<policy>/<schedule>" per schedule, its value the last handled slot as RFC 3339
// (docs/policies.md, "Running policies"). Entries of policies that no longer exist are kept, so a
// policy file put back later does not repeat a slot.
#pragma once

#include "policy/inventory.h"
#include "store/db.h"
#include "util/status.h"

namespace blocksnap::scheduler {

inline constexpr std::string_view kStateKeyPrefix = "policy/";

// Reads every entry; a value that does not parse is a Corruption error naming the key.
Result<policy::SchedulerState> LoadState(Db& db);

// Writes every entry of `state` in one synced batch.
Status SaveState(Db& db, const policy::SchedulerState& state);

}  // namespace blocksnap::scheduler
