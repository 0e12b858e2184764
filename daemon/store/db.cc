#include "store/db.h"

#include <rocksdb/filter_policy.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/table.h>

#include <sys/resource.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <vector>

#include "store/big_endian.h"
#include "store/pack.h"
#include "store/rocks_logger.h"

namespace blocksnap {
namespace {

const char* const kCfNames[] = {"default", "map", "chunks", "refs", "dirty", "packs", "locs"};

// refs values are signed 64-bit little-endian counts; a merge operand is a delta.
class CountAddOperator : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice&, const rocksdb::Slice* existing, const rocksdb::Slice& value,
             std::string* new_value, rocksdb::Logger*) const override {
    int64_t a = 0, b = 0;
    if (existing && existing->size() == 8) std::memcpy(&a, existing->data(), 8);
    if (value.size() == 8) std::memcpy(&b, value.data(), 8);
    a += b;
    new_value->assign(reinterpret_cast<const char*>(&a), 8);
    return true;
  }
  const char* Name() const override { return "blocksnap.CountAdd"; }
};

}  // namespace

Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::Ok();
  std::string msg = std::string(what) + ": " + s.ToString();
  if (s.IsNotFound()) return NotFound(std::move(msg));
  if (s.IsCorruption()) return Corruption(std::move(msg));
  if (s.IsNoSpace()) return {Code::kNoSpace, std::move(msg)};
  if (s.IsIOError()) return IOError(std::move(msg));
  if (s.IsInvalidArgument()) return InvalidArgument(std::move(msg));
  return Internal(std::move(msg));
}

Result<std::unique_ptr<Db>> Db::Open(const std::string& path) {
  // Options, chosen for this workload:
  // - meta/dirty: tiny records, point lookups and short prefix scans; defaults plus a bloom
  //   filter. Every record change is a synced WriteBatch, so the WAL is the durability point.
  // - map: 24-byte keys scanned by prefix (one volume, a chunk range), values 32 bytes;
  //   bloom filters do not help range seeks, so none; a block cache is shared by all CFs.
  // - chunks: whole chunks (4 KiB..4 MiB) stored one by one (ChunkStore::Put, through the
  //   WAL) and by versions before packs. Integrated BlobDB keeps them out of the LSM so
  //   compaction rewrites keys only; blobs are compressed with zstd; blob GC reclaims space of
  //   deleted chunks during compaction.
  // - packs: the chunk bytes snapshots store (the bulk of the data), as whole SST files
  //   written beside the DB and ingested, one per commit (store/pack.h). Each file has its
  //   own key range, so it lands in the last level and no compaction ever rewrites it; XXH3
  //   block checksums and zstd level 1 (Debian's RocksDB has a table-driven CRC32C, and blob
  //   files always use it: 40% of a snapshot's CPU, issue 8). Space of dead chunks comes
  //   back by dropping whole files and rewriting sparse ones (pack GC), never by compaction.
  // - locs: chunk hash -> its place in packs; pack records (live bytes); small, bloom.
  // - refs: counters updated by merge (no read-modify-write on the snapshot path).
  // - One DB per data dir, so a process-wide lock file guards against a second daemon.
  rocksdb::DBOptions db_opts;
  db_opts.create_if_missing = true;
  db_opts.create_missing_column_families = true;
  db_opts.max_background_jobs = 2;  // small hosts: flush + one compaction
  db_opts.keep_log_file_num = 4;
  // Every pack is a table file (64 MiB each: 16k for a TiB). RocksDB keeps all table files
  // open by default; keep at most half the descriptors the process may have (the rest are for
  // volumes and clients), the least recently used ones are closed and reopened on demand.
  rlimit nofile{};
  const rlim_t fds = ::getrlimit(RLIMIT_NOFILE, &nofile) == 0 ? nofile.rlim_cur : 1024;
  db_opts.max_open_files = static_cast<int>(std::clamp<rlim_t>(fds / 2, 256, 32768));
  db_opts.max_manifest_file_size = 64 << 20;
  // Not the LOG file in the data dir: on a full disk it would abort the daemon (rocks_logger.h).
  db_opts.info_log = std::make_shared<RocksLogger>();

  auto cache = rocksdb::NewLRUCache(64 << 20);
  auto table_opts = [&](bool bloom) {
    rocksdb::BlockBasedTableOptions t;
    t.block_cache = cache;
    if (bloom) t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    return std::shared_ptr<rocksdb::TableFactory>(rocksdb::NewBlockBasedTableFactory(t));
  };

  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (int i = 0; i < static_cast<int>(Cf::kCount_); ++i) {
    rocksdb::ColumnFamilyOptions o;
    o.compression = rocksdb::kLZ4Compression;
    switch (static_cast<Cf>(i)) {
      case Cf::kMeta:
      case Cf::kDirty:
        o.table_factory = table_opts(true);
        break;
      case Cf::kMap:
        o.table_factory = table_opts(false);
        break;
      case Cf::kChunks:
        o.table_factory = table_opts(true);
        o.enable_blob_files = true;
        o.min_blob_size = 512;
        o.blob_compression_type = rocksdb::kZSTD;
        o.enable_blob_garbage_collection = true;
        // Blob GC relocates every live blob of the oldest files (this fraction) that a
        // compaction meets, garbage or not; chunk keys are random hashes, so every L0->L1
        // compaction meets them all. A quarter (RocksDB's default) rather than half, and
        // compactions half as often (L0 files are tiny: keys and blob references only): the
        // relocation was a third of the CPU of a full snapshot (perf, issue 8).
        o.blob_garbage_collection_age_cutoff = 0.25;
        o.level0_file_num_compaction_trigger = 8;
        break;
      case Cf::kRefs:
        o.table_factory = table_opts(true);
        o.merge_operator = std::make_shared<CountAddOperator>();
        break;
      case Cf::kLocs:
        o.table_factory = table_opts(true);
        break;
      case Cf::kPacks: {
        rocksdb::BlockBasedTableOptions t;
        t.checksum = rocksdb::kXXH3;
        // Index blocks live in the shared cache (evictable: a TiB of packs has 16k of them);
        // chunk reads do not fill it (pack.cc).
        t.block_cache = cache;
        t.cache_index_and_filter_blocks = true;
        o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
        o.compression = rocksdb::kZSTD;
        o.compression_opts.level = 1;
        // SstFileWriter and the last level use the bottommost settings.
        o.bottommost_compression = rocksdb::kZSTD;
        o.bottommost_compression_opts = o.compression_opts;
        o.bottommost_compression_opts.enabled = true;
        o.disable_auto_compactions = true;
        o.write_buffer_size = 4 << 20;  // never written through the memtable
        break;
      }
      case Cf::kCount_:
        break;
    }
    cfs.emplace_back(kCfNames[i], o);
  }

  std::unique_ptr<Db> db(new Db());
  db->path_ = path;
  db->pack_options_ = rocksdb::Options(db_opts, cfs[static_cast<int>(Cf::kPacks)].options);
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  // Made here, not by RocksDB: on a first start it would log an error that it could not read
  // the directory before making it.
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return FromErrno(ec.value(), "creating " + path);
  auto s = rocksdb::DB::Open(db_opts, path, cfs, &handles, &raw);
  if (!s.ok()) return FromRocks(s, "opening database " + path);
  db->db_.reset(raw);
  for (size_t i = 0; i < handles.size(); ++i) db->handles_[i] = handles[i];
  // Chunk bytes stored outside the WAL by a snapshot that never committed them (a crash or
  // a kill): delete what nothing references, before anyone reads the store.
  BS_RETURN_IF_ERROR(db->CleanUnloggedChunks().status());
  BS_RETURN_IF_ERROR(RecoverPacks(*db));
  return db;
}

Db::~Db() {
  // Column families are closed before the DB.
  for (auto*& h : handles_) {
    if (h && db_) db_->DestroyColumnFamilyHandle(h);
    h = nullptr;
  }
  if (db_) db_->Close();
}

Result<std::optional<std::string>> Db::Get(Cf which, std::string_view key) {
  std::string value;
  auto s =
      db_->Get(rocksdb::ReadOptions(), cf(which), rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return FromRocks(s, "reading " + std::string(key));
  return std::optional<std::string>(std::move(value));
}

Status Db::Put(Cf which, std::string_view key, std::string_view value, bool sync) {
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  return FromRocks(Track(db_->Put(wo, cf(which), rocksdb::Slice(key.data(), key.size()),
                                  rocksdb::Slice(value.data(), value.size()))),
                   "writing " + std::string(key));
}

Status Db::Delete(Cf which, std::string_view key, bool sync) {
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  return FromRocks(Track(db_->Delete(wo, cf(which), rocksdb::Slice(key.data(), key.size()))),
                   "deleting " + std::string(key));
}

rocksdb::Status Db::Track(rocksdb::Status s) {
  if (s.IsIOError()) write_failed_.store(true, std::memory_order_relaxed);
  return s;
}

Status Db::CheckIngestAllowed() {
  if (!write_failed_.load(std::memory_order_relaxed)) return Status::Ok();
  return IOError(
      "a write to the store failed since blocksnapd started (a full disk?); it takes writes "
      "again once RocksDB has recovered, but storing snapshot data needs a restart of "
      "blocksnapd");
}

Status Db::Write(rocksdb::WriteBatch& batch, bool sync) {
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  return FromRocks(Track(db_->Write(wo, &batch)), "writing batch");
}

Status Db::ScanPrefix(Cf which, std::string_view prefix,
                      const std::function<bool(std::string_view, std::string_view)>& fn) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf(which)));
  rocksdb::Slice p(prefix.data(), prefix.size());
  for (it->Seek(p); it->Valid() && it->key().starts_with(p); it->Next()) {
    if (!fn(std::string_view(it->key().data(), it->key().size()),
            std::string_view(it->value().data(), it->value().size())))
      break;
  }
  return FromRocks(it->status(), "scanning " + std::string(prefix));
}

Result<std::vector<uint64_t>> Db::LeadingIds(Cf which) {
  std::vector<uint64_t> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf(which)));
  for (it->SeekToFirst(); it->Valid();) {
    rocksdb::Slice key = it->key();
    if (key.size() < 8) return Corruption("a key of " + std::to_string(key.size()) + " bytes");
    uint64_t id = GetBe64({key.data(), key.size()});
    out.push_back(id);
    if (id == UINT64_MAX) break;
    std::string next;
    PutBe64(next, id + 1);
    it->Seek(next);
  }
  BS_RETURN_IF_ERROR(FromRocks(it->status(), "scanning for ids"));
  return out;
}

Result<uint64_t> Db::CleanUnloggedChunks() {
  // The refs format (FORMAT.md): the key is the 32-byte hash, the count int64 LE.
  constexpr size_t kHash = 32;
  rocksdb::WriteBatch b;
  uint64_t deleted = 0;
  Status failed;
  BS_RETURN_IF_ERROR(
      ScanPrefix(Cf::kChunks, kUnloggedMarkPrefix, [&](std::string_view k, std::string_view) {
        rocksdb::Slice mark(k.data(), k.size());
        std::string_view hash = k.substr(kUnloggedMarkPrefix.size());
        if (hash.size() == kHash) {
          auto refs = Get(Cf::kRefs, hash);
          if (!refs.ok()) {
            failed = refs.status();
            return false;
          }
          int64_t n = 0;
          if (*refs && (*refs)->size() == 8) std::memcpy(&n, (*refs)->data(), 8);
          if (n <= 0) {
            b.Delete(cf(Cf::kChunks), rocksdb::Slice(hash.data(), hash.size()));
            ++deleted;
          }
        }
        b.Delete(cf(Cf::kChunks), mark);
        return true;
      }));
  BS_RETURN_IF_ERROR(failed);
  if (b.Count() > 0) BS_RETURN_IF_ERROR(Write(b, /*sync=*/true));
  return deleted;
}

Result<uint64_t> Db::NextId(std::string_view name) {
  std::lock_guard lock(id_mu_);
  std::string key = "next/" + std::string(name);
  BS_ASSIGN_OR_RETURN(auto current, Get(Cf::kMeta, key));
  uint64_t n = 1;
  if (current) n = std::stoull(*current) + 1;
  BS_RETURN_IF_ERROR(Put(Cf::kMeta, key, std::to_string(n)));
  return n;
}

}  // namespace blocksnap
