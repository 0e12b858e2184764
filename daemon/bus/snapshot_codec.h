// Marshalling of snapshots and store statistics into D-Bus dictionaries (a{sv}). The keys are
// the JSON fields of DESIGN.md §7 (snake_case: id, volume, state, created, tags, size,
// added_bytes, progress, ...), so `blocksnapctl --json` prints what the bus carries.
#pragma once

#include <systemd/sd-bus.h>

#include <nlohmann/json.hpp>

#include "snapshot/snapshot_record.h"
#include "store/chunk_store.h"

namespace blocksnap {

inline constexpr const char* kSnapshotDictSignature = "a{sv}";

// A flat JSON object as a{sv}: strings s, booleans b, unsigned integers t, signed x, floats d,
// objects of strings a{ss}. Returns sd-bus' result (negative errno on failure).
int AppendJsonDict(sd_bus_message* m, const nlohmann::json& object);
// SnapshotApiJson(r) as a{sv}.
int AppendSnapshotDict(sd_bus_message* m, const SnapshotRecord& r);
// stored_bytes, chunks, logical_bytes (referenced), disk_bytes, dedup_ratio, plus counts.
nlohmann::json StatusJson(const StoreStats& stats, uint64_t snapshots, uint64_t volumes);

}  // namespace blocksnap
