#include "store/block_map.h"

#include "snapshot/gc.h"
#include "snapshot/snapshot_io.h"
#include "test_util.h"

namespace blocksnap::test {
namespace {

class BlockMapTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    map_ = std::make_unique<BlockMap>(*db_);
    store_ = std::make_unique<RocksChunkStore>(*db_);
  }
  void TearDown() override {
    map_.reset();
    store_.reset();
    StoreTest::TearDown();
  }
  // Writes entry (vol, c, v) -> a chunk with content seed, taking a reference.
  Hash Put(uint64_t vol, uint64_t c, uint64_t v, uint64_t seed) {
    std::string data = Pattern(4096, c, seed);
    Hash h = Sha256(data);
    ChunkTxn txn;
    map_->StagePut(txn.batch(), vol, c, v, MapValue::Of(h));
    store_->Put(txn, h, std::span(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
    EXPECT_TRUE(store_->Commit(txn).ok());
    return h;
  }
  void PutZero(uint64_t vol, uint64_t c, uint64_t v) {
    rocksdb::WriteBatch b;
    map_->StagePut(b, vol, c, v, MapValue::Zero());
    ASSERT_TRUE(db_->Write(b).ok());
  }
  std::optional<MapValue> At(uint64_t vol, uint64_t c, uint64_t v) {
    auto r = map_->Lookup(vol, c, v);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? *r : std::nullopt;
  }
  std::set<std::tuple<uint64_t, uint64_t>> Entries(uint64_t vol) {
    std::set<std::tuple<uint64_t, uint64_t>> out;
    EXPECT_TRUE(map_->ForEachEntry(vol,
                                   [&](uint64_t c, uint64_t v, const MapValue&) {
                                     out.insert({c, v});
                                     return Status::Ok();
                                   })
                    .ok());
    return out;
  }
  std::unique_ptr<BlockMap> map_;
  std::unique_ptr<RocksChunkStore> store_;
};

TEST(MapKey, BigEndianSortsByVolumeChunkVersion) {
  EXPECT_EQ(MapKey(1, 2, 3).size(), 24u);
  EXPECT_LT(MapKey(1, 2, 3), MapKey(1, 2, 4));
  EXPECT_LT(MapKey(1, 2, 0xffff), MapKey(1, 3, 0));
  EXPECT_LT(MapKey(1, 0xffffffff, 9), MapKey(2, 0, 0));
  uint64_t v, c, ver;
  ASSERT_TRUE(ParseMapKey(MapKey(7, 0x123456789, 42), v, c, ver));
  EXPECT_EQ(v, 7u);
  EXPECT_EQ(c, 0x123456789u);
  EXPECT_EQ(ver, 42u);
  EXPECT_FALSE(ParseMapKey("short", v, c, ver));
}

TEST(MapValueCodec, ZeroMarkerAndHash) {
  EXPECT_TRUE(EncodeMapValue(MapValue::Zero()).empty());
  Hash h = Sha256(std::string_view("x"));
  auto back = DecodeMapValue(EncodeMapValue(MapValue::Of(h)));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, MapValue::Of(h));
  EXPECT_EQ(DecodeMapValue("garbage").status().code(), Code::kCorruption);
}

TEST_F(BlockMapTest, LookupTakesGreatestVersionAtOrBelow) {
  Hash a = Put(1, 5, 2, 1);
  Hash b = Put(1, 5, 4, 2);
  PutZero(1, 5, 6);
  Put(1, 6, 1, 3);  // a neighbour chunk must not leak into chunk 5
  Put(2, 5, 1, 4);  // nor another volume
  EXPECT_FALSE(At(1, 5, 1));
  EXPECT_EQ(At(1, 5, 2), MapValue::Of(a));
  EXPECT_EQ(At(1, 5, 3), MapValue::Of(a));
  EXPECT_EQ(At(1, 5, 4), MapValue::Of(b));
  EXPECT_EQ(At(1, 5, 5), MapValue::Of(b));
  EXPECT_EQ(At(1, 5, 6), MapValue::Zero());
  EXPECT_EQ(At(1, 5, kMaxVersion), MapValue::Zero());
  EXPECT_FALSE(At(1, 4, kMaxVersion));
  EXPECT_FALSE(At(3, 5, kMaxVersion));
  EXPECT_FALSE(At(0, 0, 0));
}

TEST_F(BlockMapTest, ForEachAsOfAndVolumesAndChangedChunks) {
  Put(1, 0, 1, 1);
  Put(1, 1, 1, 1);
  Put(1, 1, 3, 2);
  PutZero(1, 2, 3);
  Put(1, 3, 5, 1);
  Put(9, 0, 1, 1);
  std::map<uint64_t, bool> seen;  // chunk -> zero
  ASSERT_TRUE(map_->ForEachAsOf(1, 3,
                                [&](uint64_t c, const MapValue& v) {
                                  seen[c] = v.zero;
                                  return Status::Ok();
                                })
                  .ok());
  EXPECT_EQ(seen, (std::map<uint64_t, bool>{{0, false}, {1, false}, {2, true}}));
  auto vols = map_->Volumes();
  ASSERT_TRUE(vols.ok());
  EXPECT_EQ(*vols, (std::vector<uint64_t>{1, 9}));
  auto changed = ChangedChunks(*map_, 1, 1, 3);
  ASSERT_TRUE(changed.ok());
  EXPECT_EQ(*changed, (std::vector<uint64_t>{1}));  // chunk 2: never written -> zero: same
  changed = ChangedChunks(*map_, 1, 1, 5);
  EXPECT_EQ(*changed, (std::vector<uint64_t>{1, 3}));
}

TEST_F(BlockMapTest, GcKeepsWhatLiveVersionsAndHeadRead) {
  // Chunk 0 written at versions 1, 3, 5; chunk 1 at 2 only.
  Put(1, 0, 1, 1);
  Put(1, 0, 3, 2);
  Put(1, 0, 5, 3);
  Put(1, 1, 2, 4);
  LiveVersions live;
  live.versions = {2, 5};  // 1, 3 and 4 deleted
  live.head = true;
  auto r = CollectGarbage(*map_, *store_, 1, 4096, live);
  ASSERT_TRUE(r.ok()) << r.status().message();
  // (0,1) is read by 2; (0,3) is read by nobody in [3,5); (0,5) by 5 and the head; (1,2) by 2.
  EXPECT_EQ(Entries(1), (std::set<std::tuple<uint64_t, uint64_t>>{{0, 1}, {0, 5}, {1, 2}}));
  EXPECT_EQ(r->dropped_entries, 1u);

  live.versions = {};
  live.head = true;  // only the live volume: it needs the newest entry of each chunk
  ASSERT_TRUE(CollectGarbage(*map_, *store_, 1, 4096, live).ok());
  EXPECT_EQ(Entries(1), (std::set<std::tuple<uint64_t, uint64_t>>{{0, 5}, {1, 2}}));

  live.head = false;
  ASSERT_TRUE(CollectGarbage(*map_, *store_, 1, 4096, live).ok());
  EXPECT_TRUE(Entries(1).empty());
  EXPECT_EQ(StoredChunks(), 0u);
  EXPECT_TRUE(Refs().empty());
}

TEST_F(BlockMapTest, GcNeverDropsPendingEntriesNorLetsThemEndAnInterval) {
  Put(1, 0, 1, 1);
  Put(1, 0, 2, 2);  // version 2 is pending
  LiveVersions live;
  live.versions = {2};
  live.pending = {2};
  live.head = false;
  ASSERT_TRUE(CollectGarbage(*map_, *store_, 1, 4096, live).ok());
  // (0,1): settled newest entry, read by pending version 2 -> kept.
  EXPECT_EQ(Entries(1), (std::set<std::tuple<uint64_t, uint64_t>>{{0, 1}, {0, 2}}));
}

TEST_F(BlockMapTest, DropVersionReleasesItsChunks) {
  Put(1, 0, 1, 1);
  Put(1, 0, 2, 2);
  Put(1, 1, 2, 3);
  ChunkTxn txn;
  auto n = StageDropVersion(*map_, *store_, txn, 1, 2, 4096);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2u);
  ASSERT_TRUE(store_->Commit(txn).ok());
  EXPECT_EQ(Entries(1), (std::set<std::tuple<uint64_t, uint64_t>>{{0, 1}}));
  EXPECT_EQ(StoredChunks(), 1u);
}

}  // namespace
}  // namespace blocksnap::test
