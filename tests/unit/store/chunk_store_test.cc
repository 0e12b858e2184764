#include "store/chunk_store.h"

#include "test_util.h"

namespace blocksnap::test {
namespace {

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

class ChunkStoreTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    store_ = std::make_unique<RocksChunkStore>(*db_);
  }
  void TearDown() override {
    store_.reset();
    StoreTest::TearDown();
  }
  std::unique_ptr<RocksChunkStore> store_;
};

TEST(Sha256, KnownVectorAndHex) {
  EXPECT_EQ(HashHex(Sha256(std::string_view("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HashHex(Sha256(std::string_view(""))),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // The per-thread context is reused: hashing again gives the same digest.
  EXPECT_EQ(Sha256(std::string_view("abc")), Sha256(std::string_view("abc")));
}

TEST(Sha256, IsAllZero) {
  std::string z(65536, '\0');
  EXPECT_TRUE(IsAllZero(Bytes(z)));
  z[65535] = 1;
  EXPECT_FALSE(IsAllZero(Bytes(z)));
  z[65535] = 0;
  z[0] = 1;
  EXPECT_FALSE(IsAllZero(Bytes(z)));
  EXPECT_TRUE(IsAllZero({}));
}

TEST_F(ChunkStoreTest, PutStoresOnceAndCountsReferences) {
  std::string a = Pattern(4096, 1, 1);
  Hash h = Sha256(a);
  ChunkTxn txn;
  store_->Put(txn, h, Bytes(a));
  store_->Put(txn, h, Bytes(a));
  auto info = store_->Commit(txn);
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->added_chunks, 1u);
  EXPECT_EQ(info->added_bytes, 4096u);
  EXPECT_TRUE(txn.empty());

  store_->Put(txn, h, Bytes(a));  // a dedup hit: no new bytes
  info = store_->Commit(txn);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->added_chunks, 0u);
  EXPECT_EQ(*store_->RefCount(h), 3);
  EXPECT_TRUE(*store_->Contains(h));
  EXPECT_EQ(StoredChunks(), 1u);

  std::string out;
  ASSERT_TRUE(store_->Get(h, &out).ok());
  EXPECT_EQ(out, a);

  auto st = store_->Stats();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->chunks, 1u);
  EXPECT_EQ(st->stored_bytes, 4096u);
  EXPECT_EQ(st->referenced_bytes, 3 * 4096u);
  EXPECT_DOUBLE_EQ(st->dedup_ratio(), 3.0);
}

TEST_F(ChunkStoreTest, ReleaseDeletesAtZero) {
  std::string a = Pattern(4096, 1, 1);
  Hash h = Sha256(a);
  ChunkTxn txn;
  store_->Put(txn, h, Bytes(a));
  store_->Put(txn, h, Bytes(a));
  ASSERT_TRUE(store_->Commit(txn).ok());
  store_->Release(txn, h, 4096);
  auto info = store_->Commit(txn);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->freed_chunks, 0u);
  EXPECT_EQ(*store_->RefCount(h), 1);
  store_->Release(txn, h, 4096);
  info = store_->Commit(txn);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->freed_chunks, 1u);
  EXPECT_EQ(*store_->RefCount(h), 0);
  EXPECT_FALSE(*store_->Contains(h));
  EXPECT_EQ(StoredChunks(), 0u);
  EXPECT_TRUE(Refs().empty());
  std::string out;
  EXPECT_EQ(store_->Get(h, &out).code(), Code::kNotFound);
  auto st = store_->Stats();
  EXPECT_EQ(st->chunks, 0u);
  EXPECT_EQ(st->stored_bytes, 0u);
  EXPECT_EQ(st->referenced_bytes, 0u);
}

TEST_F(ChunkStoreTest, PutAndReleaseInOneTxnCancel) {
  std::string a = Pattern(4096, 2, 1);
  Hash h = Sha256(a);
  ChunkTxn txn;
  store_->Put(txn, h, Bytes(a));
  store_->Release(txn, h, 4096);
  ASSERT_TRUE(store_->Commit(txn).ok());
  EXPECT_EQ(StoredChunks(), 0u);
  EXPECT_TRUE(Refs().empty());
}

TEST_F(ChunkStoreTest, GetDetectsCorruptionAndNamesTheChunk) {
  std::string a = Pattern(8192, 3, 1);
  Hash h = Sha256(a);
  ChunkTxn txn;
  store_->Put(txn, h, Bytes(a));
  ASSERT_TRUE(store_->Commit(txn).ok());
  ASSERT_TRUE(db_->Put(Cf::kChunks, HashBytes(h), Pattern(8192, 3, 2)).ok());
  std::string out;
  Status st = store_->Get(h, &out);
  EXPECT_EQ(st.code(), Code::kCorruption);
  EXPECT_NE(st.message().find(HashHex(h)), std::string::npos) << st.message();
}

TEST_F(ChunkStoreTest, CommitAppliesCallerBatchAtomicallyAndHookSeesInfo) {
  std::string a = Pattern(4096, 4, 1);
  Hash h = Sha256(a);
  ChunkTxn txn;
  store_->Put(txn, h, Bytes(a));
  txn.batch().Put(db_->cf(Cf::kMeta), "test/key", "v");
  uint64_t seen = 0;
  auto info = store_->Commit(txn, [&](const CommitInfo& i, rocksdb::WriteBatch& b) {
    seen = i.added_bytes;
    b.Put(db_->cf(Cf::kMeta), "test/hook", std::to_string(i.added_bytes));
  });
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(seen, 4096u);
  EXPECT_EQ(*db_->Get(Cf::kMeta, "test/key"), std::optional<std::string>("v"));
  EXPECT_EQ(*db_->Get(Cf::kMeta, "test/hook"), std::optional<std::string>("4096"));
}

TEST_F(ChunkStoreTest, ChunksSurviveReopen) {
  std::string a = Pattern(65536, 5, 1);
  Hash h = Sha256(a);
  {
    ChunkTxn txn;
    store_->Put(txn, h, Bytes(a));
    ASSERT_TRUE(store_->Commit(txn).ok());
  }
  store_.reset();
  db_.reset();
  OpenDb();
  store_ = std::make_unique<RocksChunkStore>(*db_);
  std::string out;
  ASSERT_TRUE(store_->Get(h, &out).ok());
  EXPECT_EQ(out, a);
  EXPECT_EQ(*store_->RefCount(h), 1);
}

// PutNow: the bytes are written at once (unlogged), marked; Commit makes them durable and
// referenced, and drops the mark.
TEST_F(ChunkStoreTest, PutNowStoresAndCommitDropsTheMark) {
  std::string a = Pattern(65536, 6, 1);
  Hash h = Sha256(a);
  ChunkTxn txn;
  ASSERT_TRUE(store_->PutNow(txn, h, Bytes(a)).ok());
  EXPECT_EQ(*db_->Get(Cf::kChunks, UnloggedMarkKey(h)), std::optional<std::string>(""));
  EXPECT_EQ(*store_->RefCount(h), 0);
  auto info = store_->Commit(txn);
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->added_chunks, 1u);
  EXPECT_EQ(info->added_bytes, 65536u);
  EXPECT_EQ(*db_->Get(Cf::kChunks, UnloggedMarkKey(h)), std::nullopt);
  EXPECT_EQ(*store_->RefCount(h), 1);
  std::string out;
  ASSERT_TRUE(store_->Get(h, &out).ok());
  EXPECT_EQ(out, a);
  // A second PutNow of a stored chunk writes nothing and just adds the reference.
  ChunkTxn again;
  ASSERT_TRUE(store_->PutNow(again, h, Bytes(a)).ok());
  EXPECT_EQ(*db_->Get(Cf::kChunks, UnloggedMarkKey(h)), std::nullopt);
  auto info2 = store_->Commit(again);
  ASSERT_TRUE(info2.ok());
  EXPECT_EQ(info2->added_chunks, 0u);
  EXPECT_EQ(*store_->RefCount(h), 2);
  EXPECT_EQ(StoredChunks(), 1u);
}

// A "crash" between PutNow and Commit: the bytes may be durable (the close flushes the
// memtable, as an automatic flush could have), never referenced; the next open deletes them.
TEST_F(ChunkStoreTest, UnloggedBytesWithoutCommitAreGoneAfterReopen) {
  std::string kept = Pattern(65536, 7, 1), lost = Pattern(65536, 7, 2);
  Hash hk = Sha256(kept), hl = Sha256(lost);
  {
    ChunkTxn txn;
    ASSERT_TRUE(store_->PutNow(txn, hk, Bytes(kept)).ok());
    ASSERT_TRUE(store_->Commit(txn).ok());
  }
  ChunkTxn orphan;
  ASSERT_TRUE(store_->PutNow(orphan, hl, Bytes(lost)).ok());
  ASSERT_TRUE(store_->PutNow(orphan, hk, Bytes(kept)).ok());  // stored already: pin only
  ASSERT_TRUE(db_->raw()->Flush(rocksdb::FlushOptions(), db_->cf(Cf::kChunks)).ok());
  EXPECT_EQ(StoredChunks(), 3u);  // kept, lost, lost's mark
  store_.reset();
  db_.reset();
  OpenDb();
  store_ = std::make_unique<RocksChunkStore>(*db_);
  EXPECT_EQ(*db_->Get(Cf::kChunks, HashBytes(hl)), std::nullopt);
  EXPECT_EQ(StoredChunks(), 1u);
  std::string out;
  ASSERT_TRUE(store_->Get(hk, &out).ok());
  EXPECT_EQ(*store_->RefCount(hk), 1);
}

// A commit that drops the last reference of a chunk another txn has pinned (PutNow found it
// stored and wrote nothing) keeps the bytes, marked; that txn's commit finds them.
TEST_F(ChunkStoreTest, PinnedChunkSurvivesItsLastReleaseUntilTheCommit) {
  std::string a = Pattern(65536, 8, 1);
  Hash h = Sha256(a);
  {
    ChunkTxn txn;
    store_->Put(txn, h, Bytes(a));
    ASSERT_TRUE(store_->Commit(txn).ok());
  }
  ChunkTxn pinning;
  ASSERT_TRUE(store_->PutNow(pinning, h, Bytes(a)).ok());
  {
    ChunkTxn release;
    store_->Release(release, h, a.size());
    auto info = store_->Commit(release);
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->freed_chunks, 1u);
  }
  EXPECT_EQ(*store_->RefCount(h), 0);
  EXPECT_NE(*db_->Get(Cf::kChunks, HashBytes(h)), std::nullopt);
  EXPECT_EQ(*db_->Get(Cf::kChunks, UnloggedMarkKey(h)), std::optional<std::string>(""));
  auto info = store_->Commit(pinning);
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->added_chunks, 1u);
  EXPECT_EQ(*store_->RefCount(h), 1);
  EXPECT_EQ(*db_->Get(Cf::kChunks, UnloggedMarkKey(h)), std::nullopt);
  std::string out;
  ASSERT_TRUE(store_->Get(h, &out).ok());
  EXPECT_EQ(out, a);
  auto stats = store_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->chunks, 1u);
  EXPECT_EQ(stats->stored_bytes, 65536u);
}

// Discard deletes what the txn wrote and nothing references; the pin no longer holds.
TEST_F(ChunkStoreTest, DiscardDeletesUnreferencedUnloggedBytes) {
  std::string a = Pattern(65536, 9, 1);
  Hash h = Sha256(a);
  ChunkTxn txn;
  ASSERT_TRUE(store_->PutNow(txn, h, Bytes(a)).ok());
  ASSERT_TRUE(store_->Discard(txn).ok());
  EXPECT_TRUE(txn.empty());
  EXPECT_EQ(StoredChunks(), 0u);
  // Nothing pins it any more: a later put and release deletes it at zero as usual.
  ChunkTxn put;
  ASSERT_TRUE(store_->PutNow(put, h, Bytes(a)).ok());
  ASSERT_TRUE(store_->Commit(put).ok());
  ChunkTxn release;
  store_->Release(release, h, a.size());
  ASSERT_TRUE(store_->Commit(release).ok());
  EXPECT_EQ(StoredChunks(), 0u);
}

}  // namespace
}  // namespace blocksnap::test
