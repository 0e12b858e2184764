#include "store/chunk_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

namespace blocksnap {

std::string EncodeCount(int64_t v) {
  std::string s(8, '\0');
  std::memcpy(s.data(), &v, 8);  // little endian on every supported host
  return s;
}

int64_t DecodeCount(std::string_view v) {
  int64_t n = 0;
  if (v.size() == 8) std::memcpy(&n, v.data(), 8);
  return n;
}

std::string UnloggedMarkKey(const Hash& hash) {
  std::string key(kUnloggedMarkPrefix);
  key.append(HashBytes(hash));
  return key;
}

void ChunkTxn::Swap(ChunkTxn& other) noexcept {
  std::swap(batch_, other.batch_);
  deltas_.swap(other.deltas_);
  std::swap(staged_bytes_, other.staged_bytes_);
  pinned_.swap(other.pinned_);
  pack_.Swap(other.pack_);
}

void ChunkTxn::Clear() {
  batch_.Clear();
  deltas_.clear();
  staged_bytes_ = 0;
  pinned_.clear();
  pack_.Clear();
}

void RocksChunkStore::Put(ChunkTxn& txn, const Hash& hash, std::span<const uint8_t> data) {
  auto& d = txn.deltas_[hash];
  d.refs += 1;
  d.size = data.size();
  // Keep one copy of the bytes per txn: whether they must be written is decided at Commit
  // under commit_mu_, where no concurrent release can delete the stored copy.
  if (d.data.empty() && d.packed < 0 && !data.empty()) {
    d.data.assign(reinterpret_cast<const char*>(data.data()), data.size());
    txn.staged_bytes_ += data.size();
  }
}

Status RocksChunkStore::PutNow(ChunkTxn& txn, const Hash& hash, std::span<const uint8_t> data) {
  auto& d = txn.deltas_[hash];
  const bool first = d.refs == 0 && d.data.empty() && d.packed < 0;
  d.refs += 1;
  d.size = data.size();
  if (!first || data.empty()) return Status::Ok();
  {
    // Look and pin under commit_mu_: a commit deleting the chunk at zero either finished
    // before (we see no reference and pack the bytes) or sees the pin and keeps them.
    std::lock_guard lock(commit_mu_);
    BS_ASSIGN_OR_RETURN(int64_t current, RefCount(hash));
    if (current > 0) {
      ++pins_[hash];
      txn.pinned_.push_back(hash);
      return Status::Ok();
    }
  }
  d.packed = static_cast<int64_t>(txn.pack_.Add(hash, data));
  txn.staged_bytes_ += data.size();
  return Status::Ok();
}

void RocksChunkStore::UnpinLocked(ChunkTxn& txn) {
  for (const Hash& h : txn.pinned_) {
    auto it = pins_.find(h);
    if (it != pins_.end() && --it->second <= 0) pins_.erase(it);
  }
  txn.pinned_.clear();
}

Result<bool> RocksChunkStore::OrphanedLocked(const Hash& hash) {
  BS_ASSIGN_OR_RETURN(auto v, db_.Get(Cf::kLocs, OrphanKey(hash)));
  return v.has_value();
}

Result<uint64_t> RocksChunkStore::StoredSize(const Hash& hash) {
  BS_ASSIGN_OR_RETURN(auto loc, LookupPacked(db_, hash));
  if (loc) return uint64_t{loc->size};
  rocksdb::PinnableSlice bytes;
  auto s = db_.raw()->Get(rocksdb::ReadOptions(), db_.cf(Cf::kChunks),
                          rocksdb::Slice(HashBytes(hash).data(), kHashSize), &bytes);
  if (s.IsNotFound()) return uint64_t{0};
  if (!s.ok()) return FromRocks(s, "reading chunk " + HashHex(hash));
  return uint64_t{bytes.size()};
}

Status RocksChunkStore::Discard(ChunkTxn& txn) {
  std::vector<uint64_t> dead, sparse;
  {
    std::lock_guard lock(commit_mu_);
    const std::vector<Hash> pinned = txn.pinned_;
    UnpinLocked(txn);
    // A pack this txn wrote but never committed: nothing references it.
    if (txn.pack_.pack() != 0) dead.push_back(txn.pack_.pack());
    txn.Clear();
    // Chunks kept only for this txn (orphans nobody else pins): their bytes go now. A
    // failure here leaves them to the next start.
    rocksdb::WriteBatch b;
    PackLedger ledger(db_);
    for (const Hash& h : pinned) {
      if (PinnedLocked(h)) continue;  // the other txn's commit or discard settles it
      BS_ASSIGN_OR_RETURN(bool orphan, OrphanedLocked(h));
      if (!orphan) continue;
      BS_RETURN_IF_ERROR(ledger.StageDrop(b, h));
      b.Delete(db_.cf(Cf::kLocs), OrphanKey(h));
    }
    BS_RETURN_IF_ERROR(ledger.Stage(b, &dead, &sparse));
    if (b.Count() > 0) BS_RETURN_IF_ERROR(db_.Write(b, /*sync=*/true));
  }
  Tidy(dead, sparse);
  return Status::Ok();
}

void RocksChunkStore::Release(ChunkTxn& txn, const Hash& hash, uint64_t size) {
  auto& d = txn.deltas_[hash];
  d.refs -= 1;
  d.size = size;
}

Result<CommitInfo> RocksChunkStore::Commit(ChunkTxn& txn, const CommitHook& hook) {
  // New chunks' bytes: one pack, durable and ingested before the batch that references it.
  // Outside commit_mu_: other commits go on meanwhile. (A retry after a failed batch reuses
  // the pack already written.)
  if (!txn.pack_.empty() && txn.pack_.pack() == 0) BS_RETURN_IF_ERROR(txn.pack_.Write(db_));
  CommitInfo info;
  std::vector<uint64_t> dead, sparse;
  {
    std::lock_guard lock(commit_mu_);
    // This txn's pins are dropped for the computation ("pinned" below means by another
    // txn) and given back if the commit fails, so that txn is left as it was.
    const std::vector<Hash> mine = txn.pinned_;
    UnpinLocked(txn);
    struct Repin {
      RocksChunkStore& s;
      ChunkTxn& txn;
      const std::vector<Hash>& mine;
      bool done = false;
      ~Repin() {
        if (done) return;
        for (const Hash& h : mine) ++s.pins_[h];
        txn.pinned_ = mine;
      }
    } repin{*this, txn, mine};

    // Copy the caller's batch so that a failed write leaves txn untouched for a retry.
    rocksdb::WriteBatch batch = txn.batch_;
    PackLedger ledger(db_);
    if (txn.pack_.pack() != 0) ledger.NewPack(txn.pack_.pack(), txn.pack_.total());
    // Chunks this txn relied on but does not reference in the end: if they were kept only
    // for it (orphans) and nobody else relies on them, they go.
    for (const Hash& h : mine) {
      auto it = txn.deltas_.find(h);
      const int64_t delta = it == txn.deltas_.end() ? 0 : it->second.refs;
      BS_ASSIGN_OR_RETURN(int64_t current, RefCount(h));
      if (current + delta > 0 || current > 0 || PinnedLocked(h)) continue;
      BS_ASSIGN_OR_RETURN(bool orphan, OrphanedLocked(h));
      if (!orphan) continue;
      BS_RETURN_IF_ERROR(ledger.StageDrop(batch, h));
      batch.Delete(db_.cf(Cf::kLocs), OrphanKey(h));
    }
    int64_t ref_bytes = 0;
    for (auto& [hash, d] : txn.deltas_) {
      if (d.refs == 0) continue;
      BS_ASSIGN_OR_RETURN(int64_t current, RefCount(hash));
      int64_t next = current + d.refs;
      if (d.size == 0 && current > 0) {
        // Released without a known size (GC of a volume nothing describes any more).
        BS_ASSIGN_OR_RETURN(d.size, StoredSize(hash));
      }
      ref_bytes += d.refs * static_cast<int64_t>(d.size);
      auto key = HashBytes(hash);
      if (next <= 0) {
        // Last reference gone: the chunk goes in the same atomic batch as the release.
        if (current > 0) {
          if (PinnedLocked(hash)) {
            // Another txn relies on these bytes (its PutNow saw them stored and did not
            // copy them): keep them, marked, so that its commit finds them and a crash
            // before it leaves them to the next start. The counters count them as gone;
            // that commit counts them as added again.
            batch.Put(db_.cf(Cf::kLocs), OrphanKey(hash), rocksdb::Slice());
          } else {
            BS_RETURN_IF_ERROR(ledger.StageDrop(batch, hash));
          }
          info.freed_chunks++;
          info.freed_bytes += d.size;
        }
        batch.Delete(db_.cf(Cf::kRefs), key);
        continue;
      }
      if (current <= 0) {
        BS_ASSIGN_OR_RETURN(bool orphan, OrphanedLocked(hash));
        if (orphan) {
          batch.Delete(db_.cf(Cf::kLocs), OrphanKey(hash));  // kept bytes, in use again
        } else if (d.packed >= 0) {
          ledger.StageStored(batch, hash, txn.pack_.Loc(static_cast<size_t>(d.packed)));
        } else if (!d.data.empty() && d.data.size() == d.size) {
          batch.Put(db_.cf(Cf::kChunks), key, d.data);
        } else {
          return Internal("chunk " + HashHex(hash) + " referenced without its bytes");
        }
        info.added_chunks++;
        info.added_bytes += d.size;
      }
      // Absolute counts (computed under commit_mu_) rather than merge operands: the
      // delete-at-zero decision needs the resulting value inside this very batch.
      batch.Put(db_.cf(Cf::kRefs), key, EncodeCount(next));
    }
    auto add = [&](std::string_view key, int64_t delta) {
      if (delta != 0) batch.Merge(db_.cf(Cf::kRefs), key, EncodeCount(delta));
    };
    add(kStatChunksKey, static_cast<int64_t>(info.added_chunks - info.freed_chunks));
    add(kStatBytesKey, static_cast<int64_t>(info.added_bytes - info.freed_bytes));
    add(kStatRefBytesKey, ref_bytes);
    if (hook) hook(info, batch);
    BS_RETURN_IF_ERROR(ledger.Stage(batch, &dead, &sparse));
    if (batch.Count() > 0) BS_RETURN_IF_ERROR(db_.Write(batch, /*sync=*/true));
    repin.done = true;
    txn.Clear();
  }
  Tidy(dead, sparse);
  return info;
}

RocksChunkStore::RocksChunkStore(Db& db) : db_(db) {
  gc_.Post([this] {
    auto sparse = SparsePacks(db_);
    if (!sparse.ok())
      return spdlog::warn("store: looking for sparse packs: {}", sparse.status().message());
    for (uint64_t pack : *sparse) RewriteLater(pack);
  });
}

void RocksChunkStore::Tidy(const std::vector<uint64_t>& dead, const std::vector<uint64_t>& sparse) {
  for (uint64_t pack : dead)
    if (Status st = DeletePackFile(db_, pack); !st.ok())
      spdlog::warn("store: {}; the next start deletes it", st.message());
  for (uint64_t pack : sparse) RewriteLater(pack);
}

void RocksChunkStore::RewriteLater(uint64_t pack) {
  gc_.Post([this, pack] {
    if (Status st = Rewrite(pack); !st.ok())
      spdlog::warn("store: rewriting sparse pack {}: {}; left as it is", pack, st.message());
  });
}

Status RocksChunkStore::Rewrite(uint64_t pack) {
  // One GC thread: no two rewrites run at once. A pack queued twice is gone the second
  // time, and the scan below finds nothing.
  // Copy the chunks still placed in this pack. Unlocked: a chunk that dies meanwhile is
  // copied for nothing and counted dead in the new pack below.
  PackBuilder copy;
  std::vector<PackLoc> from;
  Status looked;
  BS_RETURN_IF_ERROR(
      ScanPack(db_, pack, [&](const PackLoc& loc, const Hash& h, std::string_view bytes) {
        auto cur = LookupPacked(db_, h);
        if (!cur.ok()) {
          looked = cur.status();
          return false;
        }
        if (*cur && **cur == loc) {
          copy.Add(h, std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
          from.push_back(loc);
        }
        return true;
      }));
  BS_RETURN_IF_ERROR(looked);
  if (!copy.empty()) BS_RETURN_IF_ERROR(copy.Write(db_));
  std::vector<uint64_t> dead, sparse;
  {
    std::lock_guard lock(commit_mu_);
    rocksdb::WriteBatch batch;
    PackLedger ledger(db_);
    if (!copy.empty()) ledger.NewPack(copy.pack(), copy.total());
    for (size_t n = 0; n < copy.size(); ++n) {
      BS_ASSIGN_OR_RETURN(auto cur, LookupPacked(db_, copy.HashOf(n)));
      if (!cur || !(*cur == from[n])) continue;  // died (or moved) while we copied
      ledger.StageStored(batch, copy.HashOf(n), copy.Loc(n));
      ledger.Move(pack, -static_cast<int64_t>(from[n].size));
    }
    BS_RETURN_IF_ERROR(ledger.Stage(batch, &dead, &sparse));
    if (batch.Count() > 0) BS_RETURN_IF_ERROR(db_.Write(batch, /*sync=*/true));
  }
  // The old pack is dead now (its live chunks moved); readers that looked a chunk up before
  // the move find the pack gone and look again (Get).
  for (uint64_t p : dead)
    if (Status st = DeletePackFile(db_, p); !st.ok())
      spdlog::warn("store: {}; the next start deletes it", st.message());
  // The new pack is sparse itself when chunks died while they were copied: rewrite it too
  // (it holds only chunks live at the commit above, so its own rewrite ends the chain).
  for (uint64_t p : sparse) RewriteLater(p);
  return Status::Ok();
}

Status RocksChunkStore::Get(const Hash& hash, std::string* out) {
  for (int attempt = 0;; ++attempt) {
    BS_ASSIGN_OR_RETURN(auto loc, LookupPacked(db_, hash));
    if (loc) {
      Status st = ReadPacked(db_, *loc, hash, out);
      // Its pack was rewritten between the lookup and the read: look again.
      if (st.code() == Code::kNotFound && attempt < 3) continue;
      if (st.code() == Code::kNotFound)
        return NotFound("chunk " + HashHex(hash) + " is not stored: " + st.message());
      BS_RETURN_IF_ERROR(st);
      break;
    }
    // Stored before packs existed (or by Put): CF chunks.
    auto s = db_.raw()->Get(rocksdb::ReadOptions(), db_.cf(Cf::kChunks),
                            rocksdb::Slice(HashBytes(hash).data(), kHashSize), out);
    if (s.IsNotFound()) return NotFound("chunk " + HashHex(hash) + " is not stored");
    if (!s.ok()) return FromRocks(s, "reading chunk " + HashHex(hash));
    break;
  }
  if (Sha256(*out) != hash)
    return Corruption("chunk " + HashHex(hash) + " is corrupt: its bytes hash to " +
                      HashHex(Sha256(*out)));
  return Status::Ok();
}

Result<bool> RocksChunkStore::Contains(const Hash& hash) {
  BS_ASSIGN_OR_RETURN(int64_t n, RefCount(hash));
  return n > 0;
}

Result<int64_t> RocksChunkStore::RefCount(const Hash& hash) {
  std::string v;
  auto s = db_.raw()->Get(rocksdb::ReadOptions(), db_.cf(Cf::kRefs),
                          rocksdb::Slice(HashBytes(hash).data(), kHashSize), &v);
  if (s.IsNotFound()) return int64_t{0};
  if (!s.ok()) return FromRocks(s, "reading refcount of chunk " + HashHex(hash));
  return DecodeCount(v);
}

Result<StoreStats> RocksChunkStore::Stats() {
  StoreStats st;
  auto read = [&](std::string_view key, uint64_t& out) -> Status {
    BS_ASSIGN_OR_RETURN(auto v, db_.Get(Cf::kRefs, key));
    int64_t n = v ? DecodeCount(*v) : 0;
    out = n > 0 ? static_cast<uint64_t>(n) : 0;
    return Status::Ok();
  };
  BS_RETURN_IF_ERROR(read(kStatChunksKey, st.chunks));
  BS_RETURN_IF_ERROR(read(kStatBytesKey, st.stored_bytes));
  BS_RETURN_IF_ERROR(read(kStatRefBytesKey, st.referenced_bytes));
  uint64_t blob = 0, sst = 0, packs = 0, locs = 0;
  db_.raw()->GetIntProperty(db_.cf(Cf::kChunks), "rocksdb.total-blob-file-size", &blob);
  db_.raw()->GetIntProperty(db_.cf(Cf::kChunks), "rocksdb.live-sst-files-size", &sst);
  db_.raw()->GetIntProperty(db_.cf(Cf::kPacks), "rocksdb.live-sst-files-size", &packs);
  db_.raw()->GetIntProperty(db_.cf(Cf::kLocs), "rocksdb.live-sst-files-size", &locs);
  st.disk_bytes = blob + sst + packs + locs;
  return st;
}

}  // namespace blocksnap
