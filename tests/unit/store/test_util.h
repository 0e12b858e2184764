// Shared fixtures of the store unit tests: a real RocksDB in a temp dir, real sparse volume
// image files, helpers to write through the write hook and to check store invariants.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <string>

#include "snapshot/snapshot_manager.h"
#include "store/db.h"
#include "store/pack.h"
#include "volume/volume.h"
#include "volume/volume_record.h"

namespace blocksnap::test {

// A WriteWaiter that a test can block on.
class SyncWaiter final : public WriteWaiter {
 public:
  void Proceed(int res) noexcept override { promise_.set_value(res); }
  // The result of a BeforeWrite/MarkDirty call: immediate, or the one Proceed delivers.
  int Resolve(int rc) { return rc == kWriteDeferred ? promise_.get_future().get() : rc; }

 private:
  std::promise<int> promise_;
};

// The bytes of chunk `c` filled with a pattern derived from seed (never all zero).
inline std::string Pattern(uint64_t size, uint64_t c, uint64_t seed) {
  std::string s(size, '\0');
  uint64_t x = (c + 1) * 0x9E3779B97F4A7C15ull ^ (seed + 1) * 0xD1B54A32D192ED03ull;
  for (auto& ch : s) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    ch = static_cast<char>(x | 1);
  }
  return s;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // /dev/shm when present: the engine syncs every batch, and tests should not wait on disks.
    std::filesystem::path base = std::filesystem::exists("/dev/shm")
                                     ? std::filesystem::path("/dev/shm")
                                     : std::filesystem::temp_directory_path();
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    // Parameterized tests are named "Seeds/ModelTest", "RandomHistory/1": without the
    // slashes, so that TearDown removes the whole directory and not just its last level.
    std::string name = std::string(info->test_suite_name()) + "-" + info->name();
    std::replace(name.begin(), name.end(), '/', '_');
    dir_ = base / ("bs-store-" + std::to_string(::getpid()) + "-" + name);
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ / "volumes");
    OpenDb();
  }
  void TearDown() override {
    mgr_.reset();
    db_.reset();
    std::filesystem::remove_all(dir_);
  }

  void OpenDb() {
    auto db = Db::Open((dir_ / "db").string());
    ASSERT_TRUE(db.ok()) << db.status().message();
    db_ = std::move(db).value();
  }
  void OpenManager(SnapshotManagerOptions opts = {}) {
    auto m = SnapshotManager::Open(*db_, opts);
    ASSERT_TRUE(m.ok()) << m.status().message();
    mgr_ = std::move(m).value();
  }
  // Closes manager and DB (as at shutdown or after a crash: pending jobs are cancelled).
  void CloseAll() {
    mgr_.reset();
    db_.reset();
  }

  // A volume record in meta (as VolumeManager writes it) and a sparse image file.
  std::shared_ptr<Volume> MakeVolume(uint64_t id, uint64_t size, uint64_t chunk_size,
                                     bool create_file = true) {
    VolumeRecord r;
    r.id = id;
    r.name = "vol" + std::to_string(id);
    r.size = size;
    r.chunk_size = chunk_size;
    EXPECT_TRUE(db_->Put(Cf::kMeta, r.Key(), EncodeVolumeRecord(r)).ok());
    std::string path = (dir_ / "volumes" / (r.IdString() + ".img")).string();
    int flags = O_RDWR | O_CLOEXEC | (create_file ? O_CREAT : 0);
    UniqueFd fd(::open(path.c_str(), flags, 0644));
    EXPECT_TRUE(fd.valid());
    if (create_file) {
      EXPECT_EQ(::ftruncate(fd.get(), static_cast<off_t>(size)), 0);
    }
    return std::make_shared<Volume>(r, std::move(fd), path);
  }
  std::shared_ptr<Volume> AttachNew(uint64_t id, uint64_t size, uint64_t chunk_size) {
    auto v = MakeVolume(id, size, chunk_size);
    Status st = mgr_->AttachVolume(v, /*created_now=*/true);
    EXPECT_TRUE(st.ok()) << st.message();
    return v;
  }
  void DeleteVolumeRecord(uint64_t id) {
    ASSERT_TRUE(db_->Delete(Cf::kMeta, "vol/" + FormatVolumeId(id)).ok());
  }

  // Writes `data` at chunk c the way the I/O layer does: BeforeWrite, wait, then pwrite.
  void WriteChunk(const Volume& v, uint64_t c, const std::string& data) {
    auto vt = mgr_->Tracking(v.id());
    ASSERT_TRUE(vt.ok()) << vt.status().message();
    SyncWaiter w;
    ASSERT_EQ(w.Resolve((*vt)->BeforeWrite(c * v.chunk_size(), data.size(), w)), 0);
    ASSERT_EQ(::pwrite(v.fd(), data.data(), data.size(), static_cast<off_t>(c * v.chunk_size())),
              static_cast<ssize_t>(data.size()));
  }
  void WritePattern(const Volume& v, uint64_t c, uint64_t seed) {
    WriteChunk(v, c, Pattern(v.chunk_size(), c, seed));
  }
  std::string ReadFile(const std::string& path) {
    std::string s;
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return s;
    char buf[65536];
    for (ssize_t n; (n = ::read(fd.get(), buf, sizeof buf)) > 0;) s.append(buf, n);
    return s;
  }
  std::string Image(const Volume& v) { return ReadFile(v.path()); }

  SnapshotRecord Snap(const Volume& v, const Tags& tags = {}) {
    auto r = mgr_->Create(v.id(), tags);
    EXPECT_TRUE(r.ok()) << r.status().message();
    if (!r.ok()) return {};
    auto done = mgr_->Wait(r->IdString());
    EXPECT_TRUE(done.ok()) << done.status().message();
    EXPECT_EQ(done->state, "completed") << done->error;
    return *done;
  }
  // Dumps snapshot id into a file at path opened with `flags` (O_WRONLY | O_CREAT | flags).
  Status DumpTo(std::string_view id, const std::string& path, int flags = O_TRUNC) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0644);
    if (fd < 0) return FromErrno(errno, "opening " + path);
    Status st = mgr_->Dump(id, fd);
    ::close(fd);
    return st;
  }
  std::string Dump(const SnapshotRecord& s) {
    std::string path = (dir_ / (s.IdString() + ".raw")).string();
    Status st = DumpTo(s.IdString(), path);
    EXPECT_TRUE(st.ok()) << st.message();
    std::string img = ReadFile(path);
    std::filesystem::remove(path);
    return img;
  }

  // Every key of a column family.
  std::vector<std::pair<std::string, std::string>> Scan(Cf cf) {
    std::vector<std::pair<std::string, std::string>> out;
    EXPECT_TRUE(db_->ScanPrefix(cf, "",
                                [&](std::string_view k, std::string_view v) {
                                  out.emplace_back(k, v);
                                  return true;
                                })
                    .ok());
    return out;
  }
  // Stored chunks, hash -> size: placed in packs (CF locs) or in CF chunks.
  std::map<std::string, uint64_t> Stored() {
    std::map<std::string, uint64_t> out;
    for (auto& [k, v] : Scan(Cf::kChunks))
      if (k.size() == kHashSize) out[k] = v.size();
    for (auto& [k, v] : Scan(Cf::kLocs))
      if (k.size() == kHashSize) {
        auto loc = PackLoc::Decode(v);
        EXPECT_TRUE(loc.has_value());
        if (loc) out[k] = loc->size;
      }
    return out;
  }
  uint64_t StoredChunks() { return Stored().size(); }
  // Refcount keys (32-byte hashes; the store's counters are not).
  std::map<std::string, int64_t> Refs() {
    std::map<std::string, int64_t> out;
    for (auto& [k, v] : Scan(Cf::kRefs))
      if (k.size() == kHashSize) out[k] = DecodeCount(v);
    return out;
  }
  // The store's invariants: every map entry's hash is referenced exactly as often as entries
  // name it, every referenced chunk is stored, nothing else is, and the counters agree.
  void ExpectConsistent() {
    std::map<std::string, int64_t> expected;
    for (auto& [k, v] : Scan(Cf::kMap))
      if (v.size() == kHashSize) expected[v]++;
    EXPECT_EQ(Refs(), expected);
    std::map<std::string, int64_t> stored;
    uint64_t bytes = 0;
    for (auto& [k, size] : Stored()) {
      stored[k] = expected.count(k) ? expected[k] : -1;
      bytes += size;
    }
    EXPECT_EQ(stored, expected);
    ExpectPacksConsistent();
    auto st = mgr_->Stats();
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->chunks, stored.size());
    EXPECT_EQ(st->stored_bytes, bytes);
  }

  // Lets background pack GC finish (its steps are atomic, not the pair "new file, old file").
  virtual void WaitMaintenance() {
    if (mgr_) mgr_->store().WaitMaintenance();
  }
  // Every pack file has a record whose live bytes are those of the chunks placed in it, and
  // every record has its file; no orphan mark is left.
  void ExpectPacksConsistent() {
    WaitMaintenance();
    std::map<uint64_t, int64_t> live;
    for (auto& [k, v] : Scan(Cf::kLocs))
      if (k.size() == kHashSize)
        if (auto loc = PackLoc::Decode(v)) live[loc->pack] += loc->size;
    std::map<uint64_t, int64_t> records;
    for (auto& [k, v] : Scan(Cf::kLocs)) {
      if (!k.starts_with(kPackRecordPrefix)) continue;
      auto r = DecodePackRecord(v);
      ASSERT_TRUE(r.has_value());
      uint64_t pack = 0;
      for (size_t i = kPackRecordPrefix.size(); i < k.size(); ++i)
        pack = (pack << 8) | static_cast<uint8_t>(k[i]);
      records[pack] = r->live;
      EXPECT_LE(r->live, r->total);
    }
    EXPECT_EQ(records, live);
    auto files = PackFiles(*db_);
    ASSERT_TRUE(files.ok());
    std::vector<uint64_t> with_record;
    for (auto& [pack, n] : records) with_record.push_back(pack);
    EXPECT_EQ(*files, with_record);
    for (auto& [k, v] : Scan(Cf::kLocs)) EXPECT_FALSE(k.starts_with(kOrphanPrefix));
  }

  std::filesystem::path dir_;
  std::unique_ptr<Db> db_;
  std::unique_ptr<SnapshotManager> mgr_;
};

}  // namespace blocksnap::test
