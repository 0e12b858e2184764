#include "store/chunk_store.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <thread>

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
  // Stores bytes with one reference (PutNow, Commit) and returns their hash.
  Hash StoreNow(const std::string& bytes) {
    Hash h = Sha256(bytes);
    ChunkTxn txn;
    EXPECT_TRUE(store_->PutNow(txn, h, Bytes(bytes)).ok());
    EXPECT_TRUE(store_->Commit(txn).ok());
    return h;
  }
  void WaitMaintenance() override { store_->WaitMaintenance(); }
  // Stores n distinct 64 KiB chunks in one commit (so one pack); returns bytes and hashes.
  std::pair<std::vector<std::string>, std::vector<Hash>> StoreInOnePack(int n, uint64_t seed) {
    std::vector<std::string> data;
    std::vector<Hash> hashes;
    ChunkTxn txn;
    for (int i = 0; i < n; ++i) {
      data.push_back(Pattern(65536, seed, static_cast<uint64_t>(i)));
      hashes.push_back(Sha256(data.back()));
      EXPECT_TRUE(store_->PutNow(txn, hashes.back(), Bytes(data.back())).ok());
    }
    EXPECT_TRUE(store_->Commit(txn).ok());
    return {data, hashes};
  }
  // Reopens the database and the store (a restart; with no commit before it, a "crash").
  void Reopen() {
    store_.reset();
    db_.reset();
    OpenDb();
    store_ = std::make_unique<RocksChunkStore>(*db_);
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
  Reopen();
  std::string out;
  ASSERT_TRUE(store_->Get(h, &out).ok());
  EXPECT_EQ(out, a);
  EXPECT_EQ(*store_->RefCount(h), 1);
}

std::optional<PackRecord> RecordOf(Db& db, uint64_t pack) {
  auto v = db.Get(Cf::kLocs, PackRecordKey(pack));
  if (!v.ok() || !*v) return std::nullopt;
  return DecodePackRecord(**v);
}

// PutNow copies new chunks into the txn's pack; Commit writes the pack (one SST file,
// ingested), then the batch placing them.
TEST_F(ChunkStoreTest, PutNowStoresNewChunksInOnePackAtCommit) {
  std::string a = Pattern(65536, 6, 1), b = Pattern(65536, 6, 2);
  Hash ha = Sha256(a), hb = Sha256(b);
  ChunkTxn txn;
  ASSERT_TRUE(store_->PutNow(txn, ha, Bytes(a)).ok());
  ASSERT_TRUE(store_->PutNow(txn, hb, Bytes(b)).ok());
  ASSERT_TRUE(store_->PutNow(txn, ha, Bytes(a)).ok());  // twice in one txn: copied once
  EXPECT_EQ(StoredChunks(), 0u);
  EXPECT_TRUE(PackFiles(*db_)->empty());
  auto info = store_->Commit(txn);
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->added_chunks, 2u);
  EXPECT_EQ(info->added_bytes, 2 * 65536u);
  auto files = PackFiles(*db_);
  ASSERT_EQ(files->size(), 1u);
  auto rec = RecordOf(*db_, files->front());
  ASSERT_TRUE(rec.has_value());
  EXPECT_EQ(rec->live, 2 * 65536);
  EXPECT_EQ(rec->total, 2 * 65536);
  EXPECT_EQ(*store_->RefCount(ha), 2);
  std::string out;
  ASSERT_TRUE(store_->Get(ha, &out).ok());
  EXPECT_EQ(out, a);
  ASSERT_TRUE(store_->Get(hb, &out).ok());
  EXPECT_EQ(out, b);
  // A second PutNow of a stored chunk copies nothing and just adds the reference.
  ChunkTxn again;
  ASSERT_TRUE(store_->PutNow(again, ha, Bytes(a)).ok());
  EXPECT_LT(again.staged_bytes(), 65536u);  // the empty batch only
  auto info2 = store_->Commit(again);
  ASSERT_TRUE(info2.ok());
  EXPECT_EQ(info2->added_chunks, 0u);
  EXPECT_EQ(*store_->RefCount(ha), 3);
  EXPECT_EQ(PackFiles(*db_)->size(), 1u);
  ExpectPacksConsistent();
  Reopen();
  ASSERT_TRUE(store_->Get(hb, &out).ok());
  EXPECT_EQ(out, b);
  ExpectPacksConsistent();
}

// A pack that lost its record while chunks are still placed in it (which no code path
// does; a guard for bugs and damage): the next open rebuilds the record and deletes nothing.
TEST_F(ChunkStoreTest, PackWithLiveChunksButNoRecordIsKeptAtOpen) {
  std::string a = Pattern(65536, 14, 1), b = Pattern(65536, 14, 2);
  ChunkTxn txn;
  ASSERT_TRUE(store_->PutNow(txn, Sha256(a), Bytes(a)).ok());
  ASSERT_TRUE(store_->PutNow(txn, Sha256(b), Bytes(b)).ok());
  ASSERT_TRUE(store_->Commit(txn).ok());
  ChunkTxn release;  // b dies; its bytes stay in the pack
  store_->Release(release, Sha256(b), b.size());
  ASSERT_TRUE(store_->Commit(release).ok());
  const uint64_t pack = PackFiles(*db_)->front();
  ASSERT_TRUE(db_->Delete(Cf::kLocs, PackRecordKey(pack)).ok());
  Reopen();
  EXPECT_EQ(*PackFiles(*db_), std::vector<uint64_t>{pack});
  auto rec = RecordOf(*db_, pack);
  ASSERT_TRUE(rec.has_value());
  EXPECT_EQ(rec->live, 65536);
  EXPECT_EQ(rec->total, 2 * 65536);
  std::string out;
  ASSERT_TRUE(store_->Get(Sha256(a), &out).ok());
  EXPECT_EQ(out, a);
  ExpectPacksConsistent();
}

// A "crash" after the pack is ingested and before the batch placing its chunks: the next
// open deletes the pack file; committed packs stay.
TEST_F(ChunkStoreTest, PackWithoutCommitIsGoneAfterReopen) {
  std::string kept = Pattern(65536, 7, 1), lost = Pattern(65536, 7, 2);
  Hash hk = Sha256(kept), hl = Sha256(lost);
  StoreNow(kept);
  PackBuilder uncommitted;
  uncommitted.Add(hl, Bytes(lost));
  ASSERT_TRUE(uncommitted.Write(*db_).ok());
  EXPECT_EQ(PackFiles(*db_)->size(), 2u);
  Reopen();
  EXPECT_EQ(PackFiles(*db_)->size(), 1u);
  EXPECT_EQ(StoredChunks(), 1u);
  std::string out;
  ASSERT_TRUE(store_->Get(hk, &out).ok());
  EXPECT_EQ(out, kept);
  EXPECT_EQ(store_->Get(hl, &out).code(), Code::kNotFound);
  ExpectPacksConsistent();
}

// A commit that drops the last reference of a chunk another txn has pinned (PutNow found it
// stored and copied nothing) keeps the bytes, marked orphan; that txn's commit finds them.
TEST_F(ChunkStoreTest, PinnedChunkSurvivesItsLastReleaseUntilTheCommit) {
  std::string a = Pattern(65536, 8, 1);
  Hash h = Sha256(a);
  StoreNow(a);
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
  EXPECT_EQ(StoredChunks(), 1u);
  EXPECT_EQ(*db_->Get(Cf::kLocs, OrphanKey(h)), std::optional<std::string>(""));
  auto info = store_->Commit(pinning);
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->added_chunks, 1u);
  EXPECT_EQ(*store_->RefCount(h), 1);
  std::string out;
  ASSERT_TRUE(store_->Get(h, &out).ok());
  EXPECT_EQ(out, a);
  auto stats = store_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->chunks, 1u);
  EXPECT_EQ(stats->stored_bytes, 65536u);
  ExpectPacksConsistent();  // no orphan mark left, the pack still counts the chunk
}

// The pinning txn never commits (a crash): the next open drops the orphan, and its pack.
TEST_F(ChunkStoreTest, OrphanOfATxnThatNeverCommittedIsDroppedAtOpen) {
  std::string a = Pattern(65536, 10, 1);
  Hash h = Sha256(a);
  StoreNow(a);
  {
    ChunkTxn pinning;  // never committed nor discarded
    ASSERT_TRUE(store_->PutNow(pinning, h, Bytes(a)).ok());
    ChunkTxn release;
    store_->Release(release, h, a.size());
    ASSERT_TRUE(store_->Commit(release).ok());
    EXPECT_EQ(PackFiles(*db_)->size(), 1u);
    Reopen();
  }
  EXPECT_EQ(StoredChunks(), 0u);
  EXPECT_TRUE(PackFiles(*db_)->empty());
  ExpectPacksConsistent();
}

// Discard forgets the staged pack and drops the orphans only it kept.
TEST_F(ChunkStoreTest, DiscardDropsWhatOnlyTheTxnKept) {
  std::string a = Pattern(65536, 9, 1), b = Pattern(65536, 9, 2);
  Hash ha = Sha256(a), hb = Sha256(b);
  StoreNow(b);
  ChunkTxn txn;
  ASSERT_TRUE(store_->PutNow(txn, ha, Bytes(a)).ok());
  ASSERT_TRUE(store_->PutNow(txn, hb, Bytes(b)).ok());  // stored: pinned
  {
    ChunkTxn release;
    store_->Release(release, hb, b.size());
    ASSERT_TRUE(store_->Commit(release).ok());
  }
  EXPECT_EQ(StoredChunks(), 1u);  // b, kept for txn
  ASSERT_TRUE(store_->Discard(txn).ok());
  EXPECT_TRUE(txn.empty());
  EXPECT_EQ(StoredChunks(), 0u);
  EXPECT_TRUE(PackFiles(*db_)->empty());
  ExpectPacksConsistent();
  // Nothing pins b any more: a later put and release deletes it at zero as usual.
  ChunkTxn put;
  ASSERT_TRUE(store_->PutNow(put, hb, Bytes(b)).ok());
  ASSERT_TRUE(store_->Commit(put).ok());
  ChunkTxn release;
  store_->Release(release, hb, b.size());
  ASSERT_TRUE(store_->Commit(release).ok());
  EXPECT_EQ(StoredChunks(), 0u);
  EXPECT_TRUE(PackFiles(*db_)->empty());
}

// A pack whose chunks all die is deleted as a file; one left less than half live is
// rewritten: its live chunks move to a new pack, readable as before, and the old file goes.
TEST_F(ChunkStoreTest, DeadPacksAreDeletedAndSparseOnesRewritten) {
  auto [data, hashes] = StoreInOnePack(8, 11);
  const uint64_t first = PackFiles(*db_)->front();
  // Half dead: not sparse yet.
  ChunkTxn half;
  for (int i = 0; i < 4; ++i) store_->Release(half, hashes[i], 65536);
  ASSERT_TRUE(store_->Commit(half).ok());
  EXPECT_EQ(*PackFiles(*db_), std::vector<uint64_t>{first});
  EXPECT_EQ(RecordOf(*db_, first)->live, 4 * 65536);
  // Less than half: rewritten (by pack GC, in the background) into a new pack holding the
  // three live chunks.
  ChunkTxn more;
  store_->Release(more, hashes[4], 65536);
  ASSERT_TRUE(store_->Commit(more).ok());
  store_->WaitMaintenance();
  auto files = PackFiles(*db_);
  ASSERT_EQ(files->size(), 1u);
  EXPECT_NE(files->front(), first);
  auto rec = RecordOf(*db_, files->front());
  ASSERT_TRUE(rec.has_value());
  EXPECT_EQ(rec->live, 3 * 65536);
  EXPECT_EQ(rec->total, 3 * 65536);
  std::string out;
  for (int i = 5; i < 8; ++i) {
    ASSERT_TRUE(store_->Get(hashes[i], &out).ok());
    EXPECT_EQ(out, data[i]);
  }
  ExpectPacksConsistent();
  // All dead: the file goes.
  ChunkTxn rest;
  for (int i = 5; i < 8; ++i) store_->Release(rest, hashes[i], 65536);
  auto info = store_->Commit(rest);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->freed_bytes, 3 * 65536u);
  EXPECT_TRUE(PackFiles(*db_)->empty());
  EXPECT_EQ(StoredChunks(), 0u);
  ExpectPacksConsistent();
}

// A pack left sparse when the daemon stopped (its rewrite was still queued) is rewritten
// by the next start's pack GC.
TEST_F(ChunkStoreTest, SparsePackLeftByAnEarlierRunIsRewrittenAtStart) {
  auto [data, hashes] = StoreInOnePack(4, 15);
  const uint64_t first = PackFiles(*db_)->front();
  store_.reset();
  // What a commit dropping three of the four chunks writes (without running any GC).
  rocksdb::WriteBatch b;
  PackLedger ledger(*db_);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(ledger.StageDrop(b, hashes[i]).ok());
    b.Delete(db_->cf(Cf::kRefs), HashBytes(hashes[i]));
  }
  std::vector<uint64_t> dead, sparse;
  ASSERT_TRUE(ledger.Stage(b, &dead, &sparse).ok());
  EXPECT_EQ(sparse, std::vector<uint64_t>{first});
  ASSERT_TRUE(db_->Write(b).ok());
  Reopen();
  store_->WaitMaintenance();
  auto files = PackFiles(*db_);
  ASSERT_EQ(files->size(), 1u);
  EXPECT_NE(files->front(), first);
  EXPECT_EQ(RecordOf(*db_, files->front())->live, 65536);
  EXPECT_EQ(RecordOf(*db_, files->front())->total, 65536);
  std::string out;
  ASSERT_TRUE(store_->Get(hashes[3], &out).ok());
  EXPECT_EQ(out, data[3]);
  ExpectPacksConsistent();
}

// A rewrite whose new pack comes out sparse itself (chunks died while pack GC copied them)
// queues that pack for rewriting too: no pack is left less than half live.
TEST_F(ChunkStoreTest, PackLeftSparseByItsRewriteIsRewrittenToo) {
  // The interleaving needs pack GC to have copied but not yet committed when the deaths
  // commit; it usually does, and an attempt that missed it (GC done first) is repeated.
  bool interleaved = false;
  for (uint64_t attempt = 0; attempt < 8 && !interleaved; ++attempt) {
    auto [data, hashes] = StoreInOnePack(8, 100 + attempt);
    auto placed = LookupPacked(*db_, hashes[0]);
    ASSERT_TRUE(placed.ok() && placed->has_value());
    const uint64_t first = (*placed)->pack;
    // Chunks 0..4 die: the pack is sparse and its rewrite is queued; it copies 5, 6 and 7.
    ChunkTxn sparse;
    for (int i = 0; i < 5; ++i) store_->Release(sparse, hashes[i], 65536);
    ASSERT_TRUE(store_->Commit(sparse).ok());
    // Chunks 5 and 6 die while it copies: this commit is held (under the store's lock,
    // which the rewrite needs to place its copies) until the copy is written as a new pack.
    ChunkTxn during;
    store_->Release(during, hashes[5], 65536);
    store_->Release(during, hashes[6], 65536);
    auto held = store_->Commit(during, [&](const CommitInfo&, rocksdb::WriteBatch&) {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      while (std::chrono::steady_clock::now() < deadline) {
        auto at = LookupPacked(*db_, hashes[7]);
        if (!at.ok() || !at->has_value() || (*at)->pack != first) return;  // GC was first
        auto files = PackFiles(*db_);
        if (files.ok() && files->back() > first) {
          interleaved = true;  // copied, not committed: it waits for this lock
          return;
        }
        std::this_thread::yield();
      }
    });
    ASSERT_TRUE(held.ok()) << held.status().message();
    store_->WaitMaintenance();
    // Only chunk 7 is live, alone in a pack that holds nothing else.
    auto at = LookupPacked(*db_, hashes[7]);
    ASSERT_TRUE(at.ok() && at->has_value());
    auto rec = RecordOf(*db_, (*at)->pack);
    ASSERT_TRUE(rec.has_value());
    EXPECT_EQ(rec->live, 65536);
    EXPECT_EQ(rec->total, 65536) << "attempt " << attempt;
    std::string out;
    ASSERT_TRUE(store_->Get(hashes[7], &out).ok());
    EXPECT_EQ(out, data[7]);
    ExpectPacksConsistent();
    ChunkTxn rest;
    store_->Release(rest, hashes[7], 65536);
    ASSERT_TRUE(store_->Commit(rest).ok());
  }
  EXPECT_TRUE(interleaved) << "pack GC always finished before the deaths committed";
}

// Concurrency: two threads store overlapping sets of chunks (PutNow, Commit) while a third
// releases references they committed, so that chunks die, are kept for pinning txns, come
// back and their packs go sparse under pack GC. Afterwards every count is what the threads
// did, every referenced chunk reads back exactly, and the packs agree with CF locs.
TEST_F(ChunkStoreTest, ConcurrentPutsReleasesAndPackGcStayConsistent) {
  constexpr int kDistinct = 256, kRounds = 80, kPerTxn = 16;
  std::vector<std::string> data;
  std::vector<Hash> hashes;
  for (int i = 0; i < kDistinct; ++i) {
    data.push_back(Pattern(4096, 16, i));
    hashes.push_back(Sha256(data.back()));
  }
  std::vector<std::atomic<int64_t>> refs(kDistinct);
  std::mutex mu;
  std::vector<int> committed;  // references the releaser may drop
  std::atomic<int> writers{2};
  std::atomic<bool> failed{false};
  auto writer = [&](uint64_t seed) {
    std::mt19937_64 rng(seed);
    for (int r = 0; r < kRounds; ++r) {
      ChunkTxn txn;
      std::vector<int> picked;
      for (int j = 0; j < kPerTxn; ++j) {
        int i = static_cast<int>(rng() % kDistinct);
        if (!store_->PutNow(txn, hashes[i], Bytes(data[i])).ok()) failed = true;
        picked.push_back(i);
      }
      if (!store_->Commit(txn).ok()) failed = true;
      std::lock_guard lock(mu);
      for (int i : picked) {
        refs[i]++;
        committed.push_back(i);
      }
    }
    writers--;
  };
  auto releaser = [&] {
    std::mt19937_64 rng(99);
    for (;;) {
      std::vector<int> drop;
      {
        std::lock_guard lock(mu);
        // Drop about two thirds of what was committed, in random order.
        while (!committed.empty() && drop.size() < 8) {
          size_t k = rng() % committed.size();
          if (rng() % 3 != 0) drop.push_back(committed[k]);
          committed[k] = committed.back();
          committed.pop_back();
        }
      }
      if (drop.empty()) {
        if (writers == 0) return;
        std::this_thread::yield();
        continue;
      }
      ChunkTxn txn;
      for (int i : drop) store_->Release(txn, hashes[i], 4096);
      if (!store_->Commit(txn).ok()) failed = true;
      for (int i : drop) refs[i]--;
    }
  };
  std::thread a(writer, 1), b(writer, 2), c(releaser);
  a.join();
  b.join();
  c.join();
  ASSERT_FALSE(failed);
  store_->WaitMaintenance();
  uint64_t live = 0;
  std::string out;
  for (int i = 0; i < kDistinct; ++i) {
    EXPECT_EQ(*store_->RefCount(hashes[i]), refs[i].load()) << i;
    if (refs[i] == 0) continue;
    ++live;
    ASSERT_TRUE(store_->Get(hashes[i], &out).ok()) << i;
    EXPECT_EQ(out, data[i]);
  }
  EXPECT_EQ(StoredChunks(), live);
  ExpectPacksConsistent();
  Reopen();  // and the same after a restart
  EXPECT_EQ(StoredChunks(), live);
  ExpectPacksConsistent();
}

// A damaged pack file: the read fails with kCorruption naming the chunk (RocksDB's block
// checksum), never with wrong bytes.
TEST_F(ChunkStoreTest, DamagedPackFileReadsAsCorruption) {
  std::string a = Pattern(65536, 12, 1);
  Hash h = Sha256(a);
  ChunkTxn txn;
  ASSERT_TRUE(store_->PutNow(txn, h, Bytes(a)).ok());
  ASSERT_TRUE(store_->Commit(txn).ok());
  rocksdb::ColumnFamilyMetaData meta;
  db_->raw()->GetColumnFamilyMetaData(db_->cf(Cf::kPacks), &meta);
  std::string file;
  for (const auto& level : meta.levels)
    for (const auto& f : level.files) file = f.db_path + "/" + f.name;
  ASSERT_FALSE(file.empty());
  Reopen();
  {
    // The chunk's block starts the file; flip bytes well inside it.
    int fd = ::open(file.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    const char junk[16] = {'j', 'u', 'n', 'k'};
    ASSERT_EQ(::pwrite(fd, junk, sizeof junk, 1000), static_cast<ssize_t>(sizeof junk));
    ::close(fd);
  }
  std::string out;
  Status st = store_->Get(h, &out);
  EXPECT_EQ(st.code(), Code::kCorruption) << st.message();
  EXPECT_NE(st.message().find(HashHex(h)), std::string::npos) << st.message();
}

// A data dir written before packs (five column families, chunk bytes in CF chunks, an
// unlogged mark left by a crash) opens, reads its chunks, and releases them as before.
TEST_F(ChunkStoreTest, StoreFromBeforePacksOpensAndReadsItsChunks) {
  store_.reset();
  db_.reset();
  std::filesystem::remove_all(dir_ / "db");
  std::string kept = Pattern(65536, 13, 1), lost = Pattern(65536, 13, 2);
  Hash hk = Sha256(kept), hl = Sha256(lost);
  {
    rocksdb::DBOptions o;
    o.create_if_missing = true;
    o.create_missing_column_families = true;
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    for (const char* name : {"default", "map", "chunks", "refs", "dirty"})
      cfs.emplace_back(name, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> h;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(o, (dir_ / "db").string(), cfs, &h, &raw).ok());
    rocksdb::WriteBatch b;
    b.Put(h[2], HashBytes(hk), kept);
    b.Put(h[3], HashBytes(hk), EncodeCount(1));
    b.Put(h[2], HashBytes(hl), lost);  // written unlogged, never committed: no refs
    b.Put(h[2], UnloggedMarkKey(hl), "");
    ASSERT_TRUE(raw->Write(rocksdb::WriteOptions(), &b).ok());
    for (auto* cf : h) raw->DestroyColumnFamilyHandle(cf);
    delete raw;
  }
  OpenDb();
  store_ = std::make_unique<RocksChunkStore>(*db_);
  EXPECT_EQ(StoredChunks(), 1u);  // the unreferenced marked chunk is gone, and its mark
  EXPECT_EQ(*db_->Get(Cf::kChunks, UnloggedMarkKey(hl)), std::nullopt);
  std::string out;
  ASSERT_TRUE(store_->Get(hk, &out).ok());
  EXPECT_EQ(out, kept);
  // A snapshot storing the same bytes references the old copy and writes no pack.
  StoreNow(kept);
  EXPECT_EQ(*store_->RefCount(hk), 2);
  EXPECT_TRUE(PackFiles(*db_)->empty());
  ChunkTxn release;
  store_->Release(release, hk, kept.size());
  store_->Release(release, hk, kept.size());
  auto info = store_->Commit(release);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->freed_chunks, 1u);
  EXPECT_EQ(StoredChunks(), 0u);
  EXPECT_EQ(*db_->Get(Cf::kChunks, HashBytes(hk)), std::nullopt);
}

}  // namespace
}  // namespace blocksnap::test
