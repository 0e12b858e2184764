// Persistence of the scheduler's state (policy::SchedulerState) in RocksDB: one meta key
// "policy/<policy>/<schedule>" per schedule, its value the last handled slot as RFC 3339
// (docs/policies.md, "Running policies"). Entries of policies that no longer exist are kept, so a
// policy file put back later does not repeat a slot.
#pragma once

#include <string>
#include <vector>

#include "policy/inventory.h"
#include "store/db.h"
#include "util/status.h"

namespace blocksnap::scheduler {

inline constexpr std::string_view kStateKeyPrefix = "policy/";

// Reads every entry. An entry that does not parse (key or value) is logged as a warning,
// described in `dropped` (if given) and left out: its schedule then starts now, without
// catch-up, and the next save replaces it. Fails only when the store cannot be read.
Result<policy::SchedulerState> LoadState(Db& db, std::vector<std::string>* dropped = nullptr);

// Writes every entry of `state` in one synced batch.
Status SaveState(Db& db, const policy::SchedulerState& state);

}  // namespace blocksnap::scheduler
