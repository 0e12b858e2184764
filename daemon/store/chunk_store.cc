#include "store/chunk_store.h"

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

void ChunkTxn::Clear() {
  batch_.Clear();
  deltas_.clear();
  staged_bytes_ = 0;
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

void RocksChunkStore::Release(ChunkTxn& txn, const Hash& hash, uint64_t size) {
  auto& d = txn.deltas_[hash];
  d.refs -= 1;
  d.size = size;
}

Result<CommitInfo> RocksChunkStore::Commit(ChunkTxn& txn, const CommitHook& hook) {
  std::lock_guard lock(commit_mu_);
  CommitInfo info;
  // Copy the caller's batch so that a failed write leaves txn untouched for a retry.
  rocksdb::WriteBatch batch = txn.batch_;
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
        batch.Delete(db_.cf(Cf::kChunks), key);
        info.freed_chunks++;
        info.freed_bytes += d.size;
      }
      batch.Delete(db_.cf(Cf::kRefs), key);
      continue;
    }
    if (current <= 0) {
      if (d.data.size() != d.size)
        return Internal("chunk " + HashHex(hash) + " referenced without its bytes");
      batch.Put(db_.cf(Cf::kChunks), key, d.data);
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
