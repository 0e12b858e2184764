#include "store/chunk_store.h"

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
  std::swap(unlogged_, other.unlogged_);
}

void ChunkTxn::Clear() {
  batch_.Clear();
  deltas_.clear();
  staged_bytes_ = 0;
  pinned_.clear();
  unlogged_ = false;
}

void RocksChunkStore::Put(ChunkTxn& txn, const Hash& hash, std::span<const uint8_t> data) {
  auto& d = txn.deltas_[hash];
  d.refs += 1;
  d.size = data.size();
  // Keep one copy of the bytes per txn: whether they must be written is decided at Commit
  // under commit_mu_, where no concurrent release can delete the stored copy.
  if (d.data.empty() && !data.empty()) {
    d.data.assign(reinterpret_cast<const char*>(data.data()), data.size());
    txn.staged_bytes_ += data.size();
  }
}

Status RocksChunkStore::PutNow(ChunkTxn& txn, const Hash& hash, std::span<const uint8_t> data) {
  auto& d = txn.deltas_[hash];
  const bool first = d.refs == 0 && d.data.empty();
  d.refs += 1;
  d.size = data.size();
  if (!first || data.empty()) return Status::Ok();
  bool write = false;
  {
    // Pin and look under commit_mu_: a commit deleting the chunk at zero either finished
    // before (we see no reference and write the bytes) or sees the pin and keeps them.
    std::lock_guard lock(commit_mu_);
    BS_ASSIGN_OR_RETURN(int64_t current, RefCount(hash));
    ++pins_[hash];
    txn.pinned_.push_back(hash);
    write = current <= 0;
  }
  if (!write) return Status::Ok();
  // The bytes and their mark go in one batch, hence one memtable, hence one flush: whenever
  // the bytes are durable, so is the mark that lets the next start delete them unreferenced.
  // Outside the WAL, they cost one copy into the memtable instead of a synced log write.
  rocksdb::WriteBatch& b = txn.scratch_;
  b.Clear();
  auto key = HashBytes(hash);
  b.Put(db_.cf(Cf::kChunks), rocksdb::Slice(key.data(), key.size()),
        rocksdb::Slice(reinterpret_cast<const char*>(data.data()), data.size()));
  b.Put(db_.cf(Cf::kChunks), UnloggedMarkKey(hash), rocksdb::Slice());
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;
  BS_RETURN_IF_ERROR(FromRocks(db_.raw()->Write(wo, &b), "storing chunk " + HashHex(hash)));
  txn.unlogged_ = true;
  txn.staged_bytes_ += data.size();  // held by the memtable until Commit flushes it
  return Status::Ok();
}

void RocksChunkStore::UnpinLocked(ChunkTxn& txn) {
  for (const Hash& h : txn.pinned_) {
    auto it = pins_.find(h);
    if (it != pins_.end() && --it->second <= 0) pins_.erase(it);
  }
  txn.pinned_.clear();
}

Status RocksChunkStore::Discard(ChunkTxn& txn) {
  std::lock_guard lock(commit_mu_);
  const std::vector<Hash> pinned = txn.pinned_;
  UnpinLocked(txn);
  txn.Clear();
  // Bytes this txn may have written unlogged: delete them where nothing references them and
  // no other txn relies on them. A failure here leaves the marks to the next start.
  rocksdb::WriteBatch b;
  for (const Hash& h : pinned) {
    if (PinnedLocked(h)) continue;  // the other txn's commit or discard settles it
    BS_ASSIGN_OR_RETURN(int64_t current, RefCount(h));
    if (current <= 0) b.Delete(db_.cf(Cf::kChunks), HashBytes(h));
    b.Delete(db_.cf(Cf::kChunks), UnloggedMarkKey(h));
  }
  if (b.Count() == 0) return Status::Ok();
  return db_.Write(b, /*sync=*/true);
}

void RocksChunkStore::Release(ChunkTxn& txn, const Hash& hash, uint64_t size) {
  auto& d = txn.deltas_[hash];
  d.refs -= 1;
  d.size = size;
}

Result<CommitInfo> RocksChunkStore::Commit(ChunkTxn& txn, const CommitHook& hook) {
  if (txn.unlogged_) {
    // Bytes written by PutNow become durable (blob files + MANIFEST, synced) before the
    // synced batch that references them. Outside commit_mu_: other commits go on meanwhile.
    rocksdb::FlushOptions fo;
    fo.wait = true;
    fo.allow_write_stall = true;
    BS_RETURN_IF_ERROR(
        FromRocks(db_.raw()->Flush(fo, db_.cf(Cf::kChunks)), "flushing stored chunks"));
    txn.unlogged_ = false;
  }
  std::lock_guard lock(commit_mu_);
  // This txn's pins are dropped for the computation ("pinned" below means by another txn)
  // and given back if the commit fails, so that txn is left as it was.
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

  CommitInfo info;
  // Copy the caller's batch so that a failed write leaves txn untouched for a retry.
  rocksdb::WriteBatch batch = txn.batch_;
  // PutNow chunks: their mark goes once they are referenced by this batch; bytes this txn
  // wrote but does not reference in the end go too, unless another txn relies on them.
  for (const Hash& h : mine) {
    auto it = txn.deltas_.find(h);
    const int64_t delta = it == txn.deltas_.end() ? 0 : it->second.refs;
    BS_ASSIGN_OR_RETURN(int64_t current, RefCount(h));
    if (current + delta > 0) {
      batch.Delete(db_.cf(Cf::kChunks), UnloggedMarkKey(h));
    } else if (!PinnedLocked(h)) {
      if (current <= 0) batch.Delete(db_.cf(Cf::kChunks), HashBytes(h));
      batch.Delete(db_.cf(Cf::kChunks), UnloggedMarkKey(h));
    }
  }
  int64_t ref_bytes = 0;
  for (auto& [hash, d] : txn.deltas_) {
    if (d.refs == 0) continue;
    BS_ASSIGN_OR_RETURN(int64_t current, RefCount(hash));
    int64_t next = current + d.refs;
    if (d.size == 0 && current > 0) {
      // Released without a known size (GC of a volume nothing describes any more).
      rocksdb::PinnableSlice bytes;
      auto s = db_.raw()->Get(rocksdb::ReadOptions(), db_.cf(Cf::kChunks),
                              rocksdb::Slice(HashBytes(hash).data(), kHashSize), &bytes);
      if (s.ok()) d.size = bytes.size();
    }
    ref_bytes += d.refs * static_cast<int64_t>(d.size);
    auto key = HashBytes(hash);
    if (next <= 0) {
      // Last reference gone: the chunk goes in the same atomic batch as the release.
      if (current > 0) {
        if (PinnedLocked(hash)) {
          // Another txn relies on these bytes (its PutNow saw them stored and did not write
          // them): keep them, marked, so that its commit finds them and a crash before it
          // leaves them to the next start's cleanup. The counters count them as gone; that
          // commit counts them as added again.
          batch.Put(db_.cf(Cf::kChunks), UnloggedMarkKey(hash), rocksdb::Slice());
        } else {
          batch.Delete(db_.cf(Cf::kChunks), key);
        }
        info.freed_chunks++;
        info.freed_bytes += d.size;
      }
      batch.Delete(db_.cf(Cf::kRefs), key);
      continue;
    }
    if (current <= 0) {
      // A chunk this txn pinned is stored: its PutNow wrote the bytes (flushed above), or
      // saw them stored and the pin kept them since.
      if (std::find(mine.begin(), mine.end(), hash) == mine.end()) {
        if (d.data.size() != d.size)
          return Internal("chunk " + HashHex(hash) + " referenced without its bytes");
        batch.Put(db_.cf(Cf::kChunks), key, d.data);
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
  if (batch.Count() > 0) BS_RETURN_IF_ERROR(db_.Write(batch, /*sync=*/true));
  repin.done = true;
  txn.Clear();
  return info;
}

Status RocksChunkStore::Get(const Hash& hash, std::string* out) {
  auto s = db_.raw()->Get(rocksdb::ReadOptions(), db_.cf(Cf::kChunks),
                          rocksdb::Slice(HashBytes(hash).data(), kHashSize), out);
  if (s.IsNotFound()) return NotFound("chunk " + HashHex(hash) + " is not stored");
  if (!s.ok()) return FromRocks(s, "reading chunk " + HashHex(hash));
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
  uint64_t blob = 0, sst = 0;
  db_.raw()->GetIntProperty(db_.cf(Cf::kChunks), "rocksdb.total-blob-file-size", &blob);
  db_.raw()->GetIntProperty(db_.cf(Cf::kChunks), "rocksdb.live-sst-files-size", &sst);
  st.disk_bytes = blob + sst;
  return st;
}

}  // namespace blocksnap
