// Garbage collection of the versioned block map (DESIGN.md §3, FORMAT.md "GC rule").
//
// Entry (vol, c, v) is read by every version in [v, n), n being the next version that has an
// entry for c (infinity when none). It is dropped, and its chunk released, only when no live
// version lies in that interval, and, for the newest entry of c (n = infinity), only when the
// live volume is gone too: the live volume's next snapshot is incremental against exactly
// those newest entries.
#pragma once

#include <cstdint>
#include <set>
#include <string>

#include "store/block_map.h"
#include "store/chunk_store.h"
#include "util/status.h"

namespace blocksnap {

// The versions of one volume that still read the block map.
struct LiveVersions {
  std::set<uint64_t> versions;  // every pending or completed snapshot
  // Pending snapshots: their entries are still being written. They are never dropped and do
  // not end an older entry's interval (the snapshot may yet fail and vanish).
  std::set<uint64_t> pending;
  bool head = true;  // the live volume exists
  // Non-empty (the record's key and error) when a snapshot record that may be this
  // volume's could not be read: its version is unknown, so no entry may be dropped
  // (SnapshotManager::Collect skips the volume).
  std::string unknown;
};

struct GcResult {
  uint64_t dropped_entries = 0;
  uint64_t freed_chunks = 0;
  uint64_t freed_bytes = 0;
};

// Drops every entry of `volume` that no live version reads and releases its chunk
// (chunk_size bytes each; 0 when unknown). Commits in bounded atomic batches: a crash in
// between leaves only entries that a later run drops.
Result<GcResult> CollectGarbage(BlockMap& map, ChunkStore& store, uint64_t volume,
                                uint64_t chunk_size, const LiveVersions& live);

// Stages into txn the removal of every entry of `version` (a failed snapshot) and the
// release of its chunks; returns how many entries were staged. The caller commits.
Result<uint64_t> StageDropVersion(BlockMap& map, ChunkStore& store, ChunkTxn& txn, uint64_t volume,
                                  uint64_t version, uint64_t chunk_size);

}  // namespace blocksnap
