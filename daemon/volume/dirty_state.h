// The durable dirty-chunk state of a volume in CF dirty (see daemon/store/FORMAT.md).
//
//   <vol:8 BE> 'H'                           -> "BSDIRTY1" <chunk count:8 BE>   (header)
//   <vol:8 BE> 'W' <generation:8 BE> <word:8 BE> -> 64 dirty bits, 8 bytes little endian
//
// A generation is the set of chunks written since a snapshot instant. Taking a snapshot
// freezes the current generation (the set the snapshot copies) and starts the next; the
// completion batch of that snapshot deletes the frozen generation. So after a crash, the
// union of every generation still stored is a superset of the chunks that may differ from
// the last completed snapshot. The header says the state was ever initialised: a volume
// without one (or with words that do not parse) needs a rescan.
#pragma once

#include <rocksdb/write_batch.h>

#include <cstdint>
#include <string>

#include "store/db.h"
#include "util/status.h"
#include "volume/dirty_bitmap.h"

namespace blocksnap {

std::string DirtyHeaderKey(uint64_t volume);
std::string DirtyWordKey(uint64_t volume, uint64_t generation, uint64_t word);

struct DirtyLoad {
  bool usable = false;  // false: missing or damaged, `reason` says which
  std::string reason;
  uint64_t max_generation = 0;  // highest generation found (0 when none)
  uint64_t generations = 0;     // how many distinct generations were found
};

// Reads the durable state of `volume` and ORs the union of its generations into `out`
// (sized for the volume's chunk count). A read error of RocksDB itself is returned as a
// Status; missing or malformed state is reported in DirtyLoad, not as an error.
Result<DirtyLoad> LoadDirtyState(Db& db, uint64_t volume, AtomicBitmap& out);

void StageDirtyHeader(Db& db, rocksdb::WriteBatch& b, uint64_t volume, uint64_t chunk_count);
void StageDirtyWord(Db& db, rocksdb::WriteBatch& b, uint64_t volume, uint64_t generation,
                    uint64_t word, uint64_t bits);
// Deletes every word of one generation.
void StageDeleteGeneration(Db& db, rocksdb::WriteBatch& b, uint64_t volume, uint64_t generation);
// Deletes every word of generations [0, below).
void StageDeleteGenerationsBelow(Db& db, rocksdb::WriteBatch& b, uint64_t volume, uint64_t below);
// Deletes the whole state of the volume (header included).
void StageDeleteDirtyState(Db& db, rocksdb::WriteBatch& b, uint64_t volume);

}  // namespace blocksnap
