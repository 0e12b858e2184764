// DamageChunk: test support shared by tests/tools/corrupt_chunk and the store unit tests.
//
// Makes one stored chunk's bytes wrong while RocksDB's own checksums stay right, so that only
// blocksnap's SHA-256 check can notice: the bytes, first one inverted, go into a pack of their
// own that the chunk is then placed in (chunks stored before packs: their CF chunks value is
// overwritten). The database must not be in use by a chunk store.
#pragma once

#include "store/chunk_store.h"
#include "store/pack.h"

namespace blocksnap::test {

inline Status DamageChunk(Db& db, const Hash& hash) {
  std::string bytes;
  BS_ASSIGN_OR_RETURN(auto loc, LookupPacked(db, hash));
  if (!loc) {
    BS_ASSIGN_OR_RETURN(auto v, db.Get(Cf::kChunks, HashBytes(hash)));
    if (!v) return NotFound("no chunk " + HashHex(hash));
    bytes = std::move(*v);
    if (!bytes.empty()) bytes[0] = static_cast<char>(~bytes[0]);
    return db.Put(Cf::kChunks, HashBytes(hash), bytes);
  }
  BS_RETURN_IF_ERROR(ReadPacked(db, *loc, hash, &bytes));
  if (!bytes.empty()) bytes[0] = static_cast<char>(~bytes[0]);
  PackBuilder damaged;
  damaged.Add(hash, std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  BS_RETURN_IF_ERROR(damaged.Write(db));
  rocksdb::WriteBatch b;
  PackLedger ledger(db);
  ledger.NewPack(damaged.pack(), damaged.total());
  ledger.StageStored(b, hash, damaged.Loc(0));
  ledger.Move(loc->pack, -static_cast<int64_t>(loc->size));
  std::vector<uint64_t> dead, sparse;
  BS_RETURN_IF_ERROR(ledger.Stage(b, &dead, &sparse));
  BS_RETURN_IF_ERROR(db.Write(b));
  for (uint64_t p : dead) BS_RETURN_IF_ERROR(DeletePackFile(db, p));
  return Status::Ok();
}

}  // namespace blocksnap::test
