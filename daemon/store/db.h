// Db: the one RocksDB instance of a data directory, with blocksnap's column families.
//
// The key schema of every column family is written down in daemon/store/FORMAT.md.
// rocksdb::Status is converted to blocksnap::Status here and nowhere else (FromRocks).
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "util/status.h"

namespace blocksnap {

// Column families (DESIGN.md §3). The order is the on-disk open order; append only.
enum class Cf : int {
  kMeta = 0,  // records: vol/<id>, snap/<id>, policy state, counters (JSON or raw)
  kMap,       // versioned block map: <vol:8 BE><chunk:8 BE><version:8 BE> -> hash | zero marker
  kChunks,    // SHA-256 -> chunk bytes (compressed, blob files)
  kRefs,      // SHA-256 -> reference count (signed 64-bit little endian, merge = add)
  kDirty,     // durable dirty-chunk state per volume and generation
  kPacks,     // <pack:8 BE><seq:4 BE> -> hash + chunk bytes: whole SST files, ingested
  kLocs,      // SHA-256 -> where in kPacks its bytes are; pack records; orphan marks
  kCount_,
};

Status FromRocks(const rocksdb::Status& s, std::string_view what);

// CF chunks: prefix of the marks of chunk bytes stored outside the WAL (ChunkStore::PutNow),
// followed by the chunk's 32-byte hash; the value is empty. 14 fixed bytes: no real hash
// starts with them in practice, and marks sort together (one short scan at open).
inline constexpr std::string_view kUnloggedMarkPrefix{"\0\0\0\0#unlogged/", 14};

class Db {
 public:
  // Opens (creating if missing) the database at `path` with every column family, then
  // deletes the bytes of marked chunks (kUnloggedMarkPrefix) that have no reference (a
  // snapshot died before committing them) and every mark, and recovers the packs
  // (RecoverPacks: files no commit referenced, orphaned chunks).
  static Result<std::unique_ptr<Db>> Open(const std::string& path);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  rocksdb::DB* raw() { return db_.get(); }
  rocksdb::ColumnFamilyHandle* cf(Cf which) { return handles_[static_cast<int>(which)]; }
  const std::string& path() const { return path_; }
  // The options CF packs is opened with: pack files are written with them (store/pack.cc).
  const rocksdb::Options& pack_options() const { return pack_options_; }
  // Where pack files are written before they are ingested: beside the database, same
  // filesystem (ingestion moves them), emptied at every open.
  std::string ingest_dir() const { return path_ + ".ingest"; }

  // Point lookup: the value, std::nullopt when absent, or an error.
  Result<std::optional<std::string>> Get(Cf which, std::string_view key);
  Status Put(Cf which, std::string_view key, std::string_view value, bool sync = true);
  Status Delete(Cf which, std::string_view key, bool sync = true);
  // Applies a batch atomically. sync=true makes it durable before returning.
  Status Write(rocksdb::WriteBatch& batch, bool sync = true);
  // Calls fn(key, value) for every key starting with prefix, in key order; fn returns false
  // to stop early.
  Status ScanPrefix(Cf which, std::string_view prefix,
                    const std::function<bool(std::string_view, std::string_view)>& fn);
  // The distinct ids that keys of `which` start with (8 bytes big endian: the volume of the
  // map and dirty families), in order, one seek per id.
  Result<std::vector<uint64_t>> LeadingIds(Cf which);
  // Whether a file may be ingested: not once a write failed with an I/O error (a failed WAL
  // write on a full disk, say) in this process, even after RocksDB recovered by itself. Debian's
  // RocksDB 7.8 aborts on an assertion (TableFileName: `number > 0`) when a file is ingested
  // after such a recovery; refusing the ingest fails one snapshot commit cleanly instead.
  // Writes go on; a restart of the daemon lifts it.
  Status CheckIngestAllowed();
  // Atomically increments the 64-bit counter at meta key `name` and returns the new value.
  // Used for volume and snapshot ids; serialized internally.
  Result<uint64_t> NextId(std::string_view name);

 private:
  Db() = default;
  // The cleanup of Open; returns how many chunks it deleted.
  Result<uint64_t> CleanUnloggedChunks();

  std::string path_;
  rocksdb::Options pack_options_;
  std::unique_ptr<rocksdb::DB> db_;
  std::array<rocksdb::ColumnFamilyHandle*, static_cast<int>(Cf::kCount_)> handles_{};
  std::mutex id_mu_;
  // Notes a write that failed with an I/O error (CheckIngestAllowed).
  rocksdb::Status Track(rocksdb::Status s);
  std::atomic<bool> write_failed_{false};
};

}  // namespace blocksnap
