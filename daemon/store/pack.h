// Packs: chunk bytes stored in bulk, as whole SST files ingested into CF packs.
//
// A snapshot commits its new chunks (64 MiB at a time) as one pack: an SST file written
// beside the database with SstFileWriter, synced, and ingested. Keys are <pack:8 BE>
// <seq:4 BE>, so every pack has a key range of its own: ingestion puts it straight into the
// last level, and nothing ever compacts it. CF locs maps each chunk hash to its place; a
// pack record counts the live bytes of each pack. A pack whose chunks are all dead is
// dropped as a whole file; one less than half live is rewritten (its live chunks copied into
// a new pack) by the chunk store's pack GC. See FORMAT.md, "packs".
#pragma once

#include <rocksdb/write_batch.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "store/db.h"
#include "store/sha256.h"
#include "util/status.h"

namespace blocksnap {

// Where a chunk's bytes are: key <pack><seq> in CF packs, and the chunk's size.
struct PackLoc {
  uint64_t pack = 0;
  uint32_t seq = 0;
  uint32_t size = 0;  // chunk bytes (uncompressed)

  std::string Key() const;     // 12 bytes
  std::string Encode() const;  // CF locs value: Key() + size (4 B BE)
  static std::optional<PackLoc> Decode(std::string_view v);
  bool operator==(const PackLoc&) const = default;
};

// Pack record (CF locs, PackRecordKey): chunk bytes of the pack still referenced, of all.
struct PackRecord {
  int64_t live = 0;
  int64_t total = 0;
};
std::string EncodePackRecord(const PackRecord& r);
std::optional<PackRecord> DecodePackRecord(std::string_view v);

inline constexpr std::string_view kPackRecordPrefix = "#pack/";
inline constexpr std::string_view kOrphanPrefix = "#orphan/";
std::string PackRecordKey(uint64_t pack);
// A chunk whose last reference went while an open txn relied on its bytes: kept, with
// this mark, until that txn commits (it references the chunk again) or the next start.
std::string OrphanKey(const Hash& hash);

// The chunks of one pack in the making: copies of their bytes in one buffer whose capacity
// is reused from pack to pack.
class PackBuilder {
 public:
  // Stages a copy of data; returns its entry number (for Loc).
  size_t Add(const Hash& hash, std::span<const uint8_t> data);
  bool empty() const { return entries_.empty(); }
  // Writes the staged chunks as one synced SST file under a new pack id (Db::NextId) and
  // ingests it. The pack has no record yet: the caller's commit writes it; RecoverPacks
  // deletes a pack file without one.
  Status Write(Db& db);
  // The pack Write made (0 before a successful Write), its size, and where entry n went.
  uint64_t pack() const { return pack_; }
  int64_t total() const { return total_; }  // chunk bytes staged
  PackLoc Loc(size_t n) const;
  const Hash& HashOf(size_t n) const { return entries_[n].hash; }
  size_t size() const { return entries_.size(); }
  void Clear();
  void Swap(PackBuilder& other) noexcept;

 private:
  struct Entry {
    Hash hash;
    size_t offset;  // of the entry's value in buffer_: the hash, then the chunk bytes
    uint32_t size;  // chunk bytes
  };
  std::string buffer_;  // the values, back to back, as they go into the file: no copy there
  int64_t total_ = 0;
  std::vector<Entry> entries_;
  uint64_t pack_ = 0;
};

// Reads the chunk at loc into *out (capacity reused). kNotFound when that pack is gone (pack
// GC rewrote it: look the chunk up again), kCorruption when the entry is another chunk's.
Status ReadPacked(Db& db, const PackLoc& loc, const Hash& hash, std::string* out);
// Calls fn(loc, hash, bytes) for every chunk in the pack, in order; fn returns false to stop.
Status ScanPack(Db& db, uint64_t pack,
                const std::function<bool(const PackLoc&, const Hash&, std::string_view)>& fn);
// Drops the pack's file (a whole-file delete: no tombstones, space back at once).
Status DeletePackFile(Db& db, uint64_t pack);
// The ids of the packs that have a file.
Result<std::vector<uint64_t>> PackFiles(Db& db);
// The chunk's place, when its bytes are in a pack (else they are in CF chunks, or absent).
Result<std::optional<PackLoc>> LookupPacked(Db& db, const Hash& hash);

// The packs whose records say less than half their bytes are live.
Result<std::vector<uint64_t>> SparsePacks(Db& db);

// Pack bookkeeping of one commit, staged under the chunk store's lock.
class PackLedger {
 public:
  explicit PackLedger(Db& db) : db_(db) {}
  // Stages deleting a chunk's stored bytes: its locs entry (its pack loses the live bytes)
  // or, for a chunk stored before packs existed, its CF chunks entry.
  Status StageDrop(rocksdb::WriteBatch& b, const Hash& hash);
  // Stages a chunk now stored at loc (a pack this commit wrote or rewrote).
  void StageStored(rocksdb::WriteBatch& b, const Hash& hash, const PackLoc& loc);
  // A pack this commit wrote (no record yet); chunks it holds that nobody references are
  // dead from the start.
  void NewPack(uint64_t pack, int64_t total) { changes_[pack].total = total; }
  void Move(uint64_t pack, int64_t live_delta) { changes_[pack].live += live_delta; }
  // Stages the changed records. Packs left with no live byte lose their record and are
  // listed in *dead (delete their files after the batch is written); packs left less than
  // half live are listed in *sparse (rewrite them).
  Status Stage(rocksdb::WriteBatch& b, std::vector<uint64_t>* dead, std::vector<uint64_t>* sparse);

 private:
  Db& db_;
  std::unordered_map<uint64_t, PackRecord> changes_;  // deltas; total set for new packs
};

// At open (Db::Open): empties the ingest directory, drops orphaned chunks nothing references
// any more, and deletes pack files without a record (written by a commit that never
// happened) or without a live chunk.
Status RecoverPacks(Db& db);

}  // namespace blocksnap
