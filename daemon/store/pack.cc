#include "store/pack.h"

#include <rocksdb/convenience.h>
#include <rocksdb/sst_file_writer.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>
#include <system_error>

namespace blocksnap {
namespace {

void PutBe(std::string& s, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 255));
}

uint64_t GetBe(std::string_view s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<uint8_t>(s[at + i]);
  return v;
}

std::string PackPrefix(uint64_t pack) {
  std::string s;
  PutBe(s, pack, 8);
  return s;
}

}  // namespace

std::string PackLoc::Key() const {
  std::string s;
  s.reserve(12);
  PutBe(s, pack, 8);
  PutBe(s, seq, 4);
  return s;
}

std::string PackLoc::Encode() const {
  std::string s = Key();
  PutBe(s, size, 4);
  return s;
}

std::optional<PackLoc> PackLoc::Decode(std::string_view v) {
  if (v.size() != 16) return std::nullopt;
  PackLoc l;
  l.pack = GetBe(v, 0, 8);
  l.seq = static_cast<uint32_t>(GetBe(v, 8, 4));
  l.size = static_cast<uint32_t>(GetBe(v, 12, 4));
  return l;
}

std::string EncodePackRecord(const PackRecord& r) {
  std::string s(16, '\0');
  std::memcpy(s.data(), &r.live, 8);  // little endian, like the refs counts
  std::memcpy(s.data() + 8, &r.total, 8);
  return s;
}

std::optional<PackRecord> DecodePackRecord(std::string_view v) {
  if (v.size() != 16) return std::nullopt;
  PackRecord r;
  std::memcpy(&r.live, v.data(), 8);
  std::memcpy(&r.total, v.data() + 8, 8);
  return r;
}

std::string PackRecordKey(uint64_t pack) {
  std::string s(kPackRecordPrefix);
  PutBe(s, pack, 8);
  return s;
}

std::string OrphanKey(const Hash& hash) {
  std::string s(kOrphanPrefix);
  s.append(HashBytes(hash));
  return s;
}

size_t PackBuilder::Add(const Hash& hash, std::span<const uint8_t> data) {
  entries_.push_back({hash, buffer_.size(), static_cast<uint32_t>(data.size())});
  buffer_.append(HashBytes(hash));
  buffer_.append(reinterpret_cast<const char*>(data.data()), data.size());
  total_ += static_cast<int64_t>(data.size());
  return entries_.size() - 1;
}

PackLoc PackBuilder::Loc(size_t n) const {
  return {pack_, static_cast<uint32_t>(n), entries_[n].size};
}

void PackBuilder::Clear() {
  buffer_.clear();
  entries_.clear();
  total_ = 0;
  pack_ = 0;
}

void PackBuilder::Swap(PackBuilder& other) noexcept {
  buffer_.swap(other.buffer_);
  std::swap(total_, other.total_);
  entries_.swap(other.entries_);
  std::swap(pack_, other.pack_);
}

Status PackBuilder::Write(Db& db) {
  BS_RETURN_IF_ERROR(db.CheckIngestAllowed());
  BS_ASSIGN_OR_RETURN(const uint64_t pack, db.NextId("pack"));
  const std::string file = db.ingest_dir() + "/pack-" + std::to_string(pack) + ".sst";
  std::error_code ec;
  std::filesystem::create_directories(db.ingest_dir(), ec);
  if (ec) return FromErrno(ec.value(), "creating " + db.ingest_dir());
  rocksdb::SstFileWriter writer(rocksdb::EnvOptions(), db.pack_options(), db.cf(Cf::kPacks));
  // The value is the hash, then the bytes: reads check they got the chunk they asked for,
  // and pack GC knows each entry's chunk without hashing it.
  auto s = writer.Open(file);
  std::string key;
  for (size_t n = 0; s.ok() && n < entries_.size(); ++n) {
    const Entry& e = entries_[n];
    key = PackLoc{pack, static_cast<uint32_t>(n), e.size}.Key();
    s = writer.Put(key, rocksdb::Slice(buffer_.data() + e.offset, kHashSize + e.size));
  }
  // Finish syncs the file; ingestion moves it into the DB and syncs the MANIFEST.
  if (s.ok()) s = writer.Finish();
  if (s.ok()) {
    rocksdb::IngestExternalFileOptions io;
    io.move_files = true;
    s = db.raw()->IngestExternalFile(db.cf(Cf::kPacks), {file}, io);
  }
  if (!s.ok()) {
    std::filesystem::remove(file, ec);
    return FromRocks(s, "storing pack " + std::to_string(pack));
  }
  pack_ = pack;  // only now: a retry after a failure writes the pack again
  return Status::Ok();
}

Status ReadPacked(Db& db, const PackLoc& loc, const Hash& hash, std::string* out) {
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;  // chunk blocks are read once; keep the cache for indexes and maps
  rocksdb::PinnableSlice v;
  auto s = db.raw()->Get(ro, db.cf(Cf::kPacks), loc.Key(), &v);
  if (s.IsNotFound()) return NotFound("pack " + std::to_string(loc.pack) + " is gone");
  if (!s.ok()) return FromRocks(s, "reading chunk " + HashHex(hash));
  if (v.size() < kHashSize || std::memcmp(v.data(), hash.data(), kHashSize) != 0 ||
      v.size() - kHashSize != loc.size)
    return Corruption("chunk " + HashHex(hash) + ": pack " + std::to_string(loc.pack) + " entry " +
                      std::to_string(loc.seq) + " holds another chunk");
  out->assign(v.data() + kHashSize, v.size() - kHashSize);
  return Status::Ok();
}

Status ScanPack(Db& db, uint64_t pack,
                const std::function<bool(const PackLoc&, const Hash&, std::string_view)>& fn) {
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db.raw()->NewIterator(ro, db.cf(Cf::kPacks)));
  const std::string prefix = PackPrefix(pack);
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    std::string_view k(it->key().data(), it->key().size());
    std::string_view v(it->value().data(), it->value().size());
    if (k.size() != 12 || v.size() < kHashSize)
      return Corruption("pack " + std::to_string(pack) + ": malformed entry");
    Hash h;
    std::memcpy(h.data(), v.data(), kHashSize);
    PackLoc loc{pack, static_cast<uint32_t>(GetBe(k, 8, 4)),
                static_cast<uint32_t>(v.size() - kHashSize)};
    if (!fn(loc, h, v.substr(kHashSize))) break;
  }
  return FromRocks(it->status(), "scanning pack " + std::to_string(pack));
}

Status DeletePackFile(Db& db, uint64_t pack) {
  const std::string begin = PackPrefix(pack), end = PackPrefix(pack + 1);
  rocksdb::Slice b(begin), e(end);
  return FromRocks(rocksdb::DeleteFilesInRange(db.raw(), db.cf(Cf::kPacks), &b, &e,
                                               /*include_end=*/false),
                   "deleting pack " + std::to_string(pack));
}

Result<std::vector<uint64_t>> PackFiles(Db& db) {
  rocksdb::ColumnFamilyMetaData meta;
  db.raw()->GetColumnFamilyMetaData(db.cf(Cf::kPacks), &meta);
  std::vector<uint64_t> packs;
  for (const auto& level : meta.levels)
    for (const auto& f : level.files) {
      if (f.smallestkey.size() != 12 || f.largestkey.size() != 12 ||
          f.smallestkey.compare(0, 8, f.largestkey, 0, 8) != 0)
        return Corruption("pack file " + f.name + " spans more than one pack");
      packs.push_back(GetBe(f.smallestkey, 0, 8));
    }
  std::sort(packs.begin(), packs.end());
  return packs;
}

Result<std::optional<PackLoc>> LookupPacked(Db& db, const Hash& hash) {
  BS_ASSIGN_OR_RETURN(auto v, db.Get(Cf::kLocs, HashBytes(hash)));
  if (!v) return std::optional<PackLoc>();
  auto loc = PackLoc::Decode(*v);
  if (!loc) return Corruption("chunk " + HashHex(hash) + ": malformed place in packs");
  return loc;
}

Result<std::vector<uint64_t>> SparsePacks(Db& db) {
  std::vector<uint64_t> sparse;
  BS_RETURN_IF_ERROR(
      db.ScanPrefix(Cf::kLocs, kPackRecordPrefix, [&](std::string_view k, std::string_view v) {
        auto r = DecodePackRecord(v);
        if (k.size() == kPackRecordPrefix.size() + 8 && r && r->live * 2 < r->total)
          sparse.push_back(GetBe(k, kPackRecordPrefix.size(), 8));
        return true;
      }));
  return sparse;
}

Status PackLedger::StageDrop(rocksdb::WriteBatch& b, const Hash& hash) {
  BS_ASSIGN_OR_RETURN(auto loc, LookupPacked(db_, hash));
  if (!loc) {
    b.Delete(db_.cf(Cf::kChunks), HashBytes(hash));  // stored before packs
    return Status::Ok();
  }
  b.Delete(db_.cf(Cf::kLocs), HashBytes(hash));
  changes_[loc->pack].live -= loc->size;
  return Status::Ok();
}

void PackLedger::StageStored(rocksdb::WriteBatch& b, const Hash& hash, const PackLoc& loc) {
  b.Put(db_.cf(Cf::kLocs), HashBytes(hash), loc.Encode());
  changes_[loc.pack].live += loc.size;
}

Status PackLedger::Stage(rocksdb::WriteBatch& b, std::vector<uint64_t>* dead,
                         std::vector<uint64_t>* sparse) {
  for (const auto& [pack, change] : changes_) {
    PackRecord r;
    if (change.total > 0) {
      r.total = change.total;  // a new pack: no record yet
    } else {
      BS_ASSIGN_OR_RETURN(auto v, db_.Get(Cf::kLocs, PackRecordKey(pack)));
      auto old = v ? DecodePackRecord(*v) : std::nullopt;
      if (!old) {
        spdlog::warn("pack {}: no record while its chunks change; leaving it to the next start",
                     pack);
        continue;
      }
      r = *old;
    }
    r.live += change.live;
    if (r.live <= 0) {
      if (change.total == 0) b.Delete(db_.cf(Cf::kLocs), PackRecordKey(pack));
      dead->push_back(pack);
      continue;
    }
    b.Put(db_.cf(Cf::kLocs), PackRecordKey(pack), EncodePackRecord(r));
    if (r.live * 2 < r.total) sparse->push_back(pack);
  }
  changes_.clear();
  return Status::Ok();
}

Status RecoverPacks(Db& db) {
  std::error_code ec;
  std::filesystem::remove_all(db.ingest_dir(), ec);
  if (ec) return FromErrno(ec.value(), "emptying " + db.ingest_dir());

  // Orphans: chunks kept for a txn that then never committed. Dropped when still unused.
  rocksdb::WriteBatch b;
  PackLedger ledger(db);
  Status failed;
  BS_RETURN_IF_ERROR(
      db.ScanPrefix(Cf::kLocs, kOrphanPrefix, [&](std::string_view k, std::string_view) {
        Hash h;
        if (!HashFromBytes(k.substr(kOrphanPrefix.size()), h)) return true;
        auto refs = db.Get(Cf::kRefs, HashBytes(h));
        if (!refs.ok()) {
          failed = refs.status();
          return false;
        }
        int64_t n = 0;
        if (*refs && (*refs)->size() == 8) std::memcpy(&n, (*refs)->data(), 8);
        if (n <= 0) failed = ledger.StageDrop(b, h);
        b.Delete(db.cf(Cf::kLocs), rocksdb::Slice(k.data(), k.size()));
        return failed.ok();
      }));
  BS_RETURN_IF_ERROR(failed);
  // Sparse packs are left to the chunk store, whose pack GC starts with every pack whose
  // record says it is sparse (SparsePacks); dead ones go below (no record, no live chunk).
  std::vector<uint64_t> dead, sparse;
  BS_RETURN_IF_ERROR(ledger.Stage(b, &dead, &sparse));
  if (b.Count() > 0) BS_RETURN_IF_ERROR(db.Write(b, /*sync=*/true));

  // Pack files without a record: a commit that never happened, or whose pack died before
  // its file could be deleted. Before a file goes, its entries are checked against CF locs
  // (a pack is rarely without a record, and reading one costs a second): should any chunk
  // still be placed in it, the record is rebuilt instead, and nothing is lost.
  BS_ASSIGN_OR_RETURN(auto files, PackFiles(db));
  for (uint64_t pack : files) {
    BS_ASSIGN_OR_RETURN(auto rec, db.Get(Cf::kLocs, PackRecordKey(pack)));
    if (rec) continue;
    PackRecord found;
    Status looked;
    BS_RETURN_IF_ERROR(ScanPack(db, pack, [&](const PackLoc& loc, const Hash& h, std::string_view) {
      found.total += loc.size;
      auto placed = LookupPacked(db, h);
      if (!placed.ok()) looked = placed.status();
      if (looked.ok() && *placed && **placed == loc) found.live += loc.size;
      return looked.ok();
    }));
    BS_RETURN_IF_ERROR(looked);
    if (found.live > 0) {
      spdlog::error("store: pack {} holds {} live bytes but had no record; record rebuilt", pack,
                    found.live);
      BS_RETURN_IF_ERROR(db.Put(Cf::kLocs, PackRecordKey(pack), EncodePackRecord(found)));
      continue;
    }
    spdlog::info("store: deleting pack {}, which no commit references", pack);
    BS_RETURN_IF_ERROR(DeletePackFile(db, pack));
  }
  return Status::Ok();
}

}  // namespace blocksnap
