// ChunkStore: content-addressed chunk storage with reference counts.
//
// A chunk is stored once under its SHA-256, however many snapshots of however many volumes
// reference it. Changes are staged in a ChunkTxn and applied by Commit() in one atomic,
// durable RocksDB WriteBatch together with whatever else the caller staged in txn.batch()
// (block map entries, snapshot records, dirty-state deletions): a crash never leaves a
// reference without its chunk or an entry without its reference.
//
// The interface is small on purpose (put, get, contains, release) so that a second tier can
// later keep chunk bytes off-host while refcounts, the block map and records stay in RocksDB.
#pragma once

#include <rocksdb/write_batch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "store/db.h"
#include "store/pack.h"
#include "store/sha256.h"
#include "util/status.h"
#include "util/task_threads.h"

namespace blocksnap {

// Staged chunk-store changes plus the caller's other writes, applied by ChunkStore::Commit.
class ChunkTxn {
 public:
  ChunkTxn() = default;
  ChunkTxn(const ChunkTxn&) = delete;
  ChunkTxn& operator=(const ChunkTxn&) = delete;

  // The caller's own writes (map entries, records) that must commit atomically with this.
  rocksdb::WriteBatch& batch() { return batch_; }
  // Approximate memory held: chunk bytes staged for storing plus the batch.
  size_t staged_bytes() const { return staged_bytes_ + batch_.GetDataSize(); }
  bool empty() const { return deltas_.empty() && batch_.Count() == 0 && pinned_.empty(); }
  // Exchanges the contents (staged changes, pins) of two txns.
  void Swap(ChunkTxn& other) noexcept;
  // Forgets everything staged. Chunks pinned by PutNow stay pinned: use ChunkStore::Discard.
  void Clear();

 private:
  friend class RocksChunkStore;
  struct Delta {
    int64_t refs = 0;     // net reference change
    uint64_t size = 0;    // chunk size in bytes
    std::string data;     // the bytes, when this txn may be the one to store them (Put)
    int64_t packed = -1;  // PutNow: the bytes' entry in pack_, when it copied them there
  };
  rocksdb::WriteBatch batch_;
  std::unordered_map<Hash, Delta, HashHasher> deltas_;
  size_t staged_bytes_ = 0;
  // PutNow: chunks whose stored bytes this txn relies on (pinned: no commit deletes them),
  // and the new chunks' bytes, which Commit writes as one pack.
  std::vector<Hash> pinned_;
  PackBuilder pack_;
};

// What a Commit changed in the store.
struct CommitInfo {
  uint64_t added_chunks = 0;  // chunks newly stored (none of that hash was stored before)
  uint64_t added_bytes = 0;
  uint64_t freed_chunks = 0;  // chunks whose last reference was dropped, now deleted
  uint64_t freed_bytes = 0;
};

struct StoreStats {
  uint64_t chunks = 0;            // distinct chunks stored
  uint64_t stored_bytes = 0;      // their uncompressed size
  uint64_t referenced_bytes = 0;  // sum over references of the chunk size (logical bytes)
  uint64_t disk_bytes = 0;        // RocksDB's estimate of the chunks' on-disk size
  double dedup_ratio() const {
    return stored_bytes ? static_cast<double>(referenced_bytes) / stored_bytes : 1.0;
  }
};

class ChunkStore {
 public:
  virtual ~ChunkStore() = default;

  // Stages one new reference to the chunk `hash` with contents `data`; the bytes are stored
  // at Commit unless a chunk with that hash is already stored. data must hash to `hash`.
  virtual void Put(ChunkTxn& txn, const Hash& hash, std::span<const uint8_t> data) = 0;
  // Like Put, for bulk copies (snapshots): the bytes of chunks the store does not hold go
  // into one pack file that Commit writes and ingests before its batch (see store/pack.h),
  // not through the WAL. A chunk the store holds is pinned until Commit or Discard: no
  // commit deletes its bytes meanwhile. A pack whose commit never happens is deleted by
  // Discard, or at the next start.
  virtual Status PutNow(ChunkTxn& txn, const Hash& hash, std::span<const uint8_t> data) {
    Put(txn, hash, data);
    return Status::Ok();
  }
  // Drops everything txn staged; deletes bytes kept for its PutNow that nothing references
  // any more. txn is empty afterwards, even on failure (then the next start cleans up).
  virtual Status Discard(ChunkTxn& txn) {
    txn.Clear();
    return Status::Ok();
  }
  // Stages dropping one reference; a chunk left with none is deleted at Commit. `size` is
  // the chunk's size in bytes (kept for the store's statistics).
  virtual void Release(ChunkTxn& txn, const Hash& hash, uint64_t size) = 0;
  // Called inside Commit, once the CommitInfo is known and before the batch is written, to
  // stage writes that depend on it (e.g. a record's added_bytes). Runs under the store lock.
  using CommitHook = std::function<void(const CommitInfo&, rocksdb::WriteBatch&)>;
  // Applies txn and txn.batch() atomically and durably (synced), then clears txn. On failure
  // nothing is applied and txn is left as it was.
  virtual Result<CommitInfo> Commit(ChunkTxn& txn, const CommitHook& hook = nullptr) = 0;

  // Reads the chunk into *out (its capacity is reused) and verifies it against its hash:
  // kCorruption naming the chunk when the bytes do not match, kNotFound when absent.
  virtual Status Get(const Hash& hash, std::string* out) = 0;
  virtual Result<bool> Contains(const Hash& hash) = 0;
  // The current reference count (0 when absent).
  virtual Result<int64_t> RefCount(const Hash& hash) = 0;
  virtual Result<StoreStats> Stats() = 0;
  // Blocks until background maintenance (pack GC) has nothing left to do (tests).
  virtual void WaitMaintenance() {}
};

// The RocksDB tier: bytes in packs (PutNow) or CF chunks (Put; blob files, zstd), counts in
// CF refs.
class RocksChunkStore : public ChunkStore {
 public:
  // Starts pack GC on its own thread, with the packs an earlier run left sparse.
  explicit RocksChunkStore(Db& db);

  void Put(ChunkTxn& txn, const Hash& hash, std::span<const uint8_t> data) override;
  Status PutNow(ChunkTxn& txn, const Hash& hash, std::span<const uint8_t> data) override;
  Status Discard(ChunkTxn& txn) override;
  void Release(ChunkTxn& txn, const Hash& hash, uint64_t size) override;
  Result<CommitInfo> Commit(ChunkTxn& txn, const CommitHook& hook = nullptr) override;
  Status Get(const Hash& hash, std::string* out) override;
  Result<bool> Contains(const Hash& hash) override;
  Result<int64_t> RefCount(const Hash& hash) override;
  Result<StoreStats> Stats() override;
  void WaitMaintenance() override { gc_.WaitIdle(); }

 private:
  bool PinnedLocked(const Hash& hash) const { return pins_.count(hash) != 0; }
  void UnpinLocked(ChunkTxn& txn);
  Result<bool> OrphanedLocked(const Hash& hash);
  Result<uint64_t> StoredSize(const Hash& hash);
  // Deletes the files of dead packs now and hands sparse ones to pack GC; failures are
  // logged (the next start retries).
  void Tidy(const std::vector<uint64_t>& dead, const std::vector<uint64_t>& sparse);
  // Pack GC (on gc_): copies the live chunks of a sparse pack into a new one, then drops it.
  Status Rewrite(uint64_t pack);
  void RewriteLater(uint64_t pack);

  Db& db_;
  // Serializes Commit, PutNow's pin and Discard: the refcount read-compute-write and the
  // delete-at-zero decision must not interleave with another commit staging the same chunk.
  std::mutex commit_mu_;
  // Chunks whose bytes an open txn relies on (PutNow): count of txns per hash.
  std::unordered_map<Hash, int, HashHasher> pins_;
  // Pack GC copies up to half a pack per sparse pack: off the threads that commit (a
  // snapshot delete runs on the D-Bus loop). Last member: stopped first. Queued rewrites
  // are dropped at stop; the next start finds the packs still sparse.
  TaskThreads gc_{1, TaskThreads::AtStop::kDrop, "pack GC"};
};

// Key in CF chunks marking chunk bytes that an earlier version wrote outside the WAL and that
// may have no reference: the prefix (14 fixed bytes: no real hash starts so) + the 32-byte
// hash; empty value. No longer written (PutNow writes packs); Db::Open still deletes the
// unreferenced chunks of such marks left by a crash of that version (kUnloggedMarkPrefix).
std::string UnloggedMarkKey(const Hash& hash);

// Keys of the store's counters in CF refs (not 32 bytes long, so never a chunk hash).
inline constexpr std::string_view kStatChunksKey = "#stats/chunks";
inline constexpr std::string_view kStatBytesKey = "#stats/bytes";
inline constexpr std::string_view kStatRefBytesKey = "#stats/ref_bytes";

// Encoding of counts in CF refs: signed 64-bit little endian (the merge operator's format).
std::string EncodeCount(int64_t v);
int64_t DecodeCount(std::string_view v);

}  // namespace blocksnap
