#include <thread>

#include "test_util.h"
#include "volume/dirty_bitmap.h"
#include "volume/dirty_state.h"
#include "volume/dirty_tracker.h"

namespace blocksnap::test {
namespace {

TEST(AtomicBitmap, SetTestAcrossWords) {
  AtomicBitmap b(200);
  EXPECT_EQ(b.words(), 4u);
  EXPECT_TRUE(b.Set(0));
  EXPECT_FALSE(b.Set(0));  // already set: the caller did not set it
  for (uint64_t i = 60; i <= 130; ++i) b.Set(i);
  EXPECT_TRUE(b.TestAll(60, 130));
  EXPECT_TRUE(b.TestAll(64, 127));
  EXPECT_FALSE(b.TestAll(59, 130));
  EXPECT_FALSE(b.TestAll(60, 131));
  EXPECT_TRUE(b.TestAll(199, 199) == b.Test(199));
  EXPECT_EQ(b.Count(), 72u);
  b.Clear(100);
  EXPECT_FALSE(b.TestAll(60, 130));
  auto bits = b.SetBits();
  EXPECT_EQ(bits.front(), 0u);
  EXPECT_EQ(bits.size(), 71u);
  b.SetWord(3, ~uint64_t{0});  // bits past the end are masked off
  EXPECT_EQ(b.Count(), 71u + 8u);
  EXPECT_EQ(AtomicBitmap::RangeMask(0, 0, 63), ~uint64_t{0});
  EXPECT_EQ(AtomicBitmap::RangeMask(1, 65, 66), uint64_t{6});
}

class DirtyTest : public StoreTest {
 protected:
  std::unique_ptr<DirtyTracker> Open(uint64_t chunks, bool fresh) {
    auto t = DirtyTracker::Open(*db_, 7, chunks, fresh);
    EXPECT_TRUE(t.ok()) << t.status().message();
    return t.ok() ? std::move(t).value() : nullptr;
  }
  void Mark(DirtyTracker& t, uint64_t first, uint64_t last) {
    SyncWaiter w;
    ASSERT_EQ(w.Resolve(t.MarkDirty(first, last, &w)), 0);
  }
};

TEST_F(DirtyTest, FreshVolumeIsCleanAndRepeatWritesAreReady) {
  auto t = Open(1000, true);
  EXPECT_FALSE(t->needs_rescan());
  EXPECT_TRUE(t->DirtyChunks().empty());
  SyncWaiter w;
  int rc = t->MarkDirty(5, 9, &w);
  EXPECT_EQ(rc, kWriteDeferred);  // the first write of a clean chunk waits for durability
  EXPECT_EQ(w.Resolve(rc), 0);
  EXPECT_TRUE(t->IsDirty(5));
  EXPECT_TRUE(t->IsDirty(9));
  // Already durably dirty: ready at once, the waiter is never touched.
  EXPECT_EQ(t->MarkDirty(5, 9, nullptr), kWriteReady);
  EXPECT_EQ(t->MarkDirty(7, 7, nullptr), kWriteReady);
}

TEST_F(DirtyTest, DirtySetSurvivesReopen) {
  {
    auto t = Open(1000, true);
    Mark(*t, 3, 3);
    Mark(*t, 63, 65);
    Mark(*t, 999, 999);
  }
  auto t = Open(1000, false);
  EXPECT_FALSE(t->needs_rescan()) << t->rescan_reason();
  EXPECT_EQ(t->DirtyChunks(), (std::vector<uint64_t>{3, 63, 64, 65, 999}));
}

TEST_F(DirtyTest, GroupCommitAcrossConcurrentWriters) {
  auto t = Open(4096, true);
  constexpr int kThreads = 8, kPerThread = 64;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      for (int j = 0; j < kPerThread; ++j) {
        uint64_t c = static_cast<uint64_t>(j * kThreads + i);
        SyncWaiter w;
        EXPECT_EQ(w.Resolve(t->MarkDirty(c, c, &w)), 0);
        EXPECT_TRUE(t->IsDirty(c));  // durable before the write is released
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(t->DirtyChunks().size(), static_cast<size_t>(kThreads * kPerThread));
  t.reset();
  t = Open(4096, false);
  EXPECT_EQ(t->DirtyChunks().size(), static_cast<size_t>(kThreads * kPerThread));
}

// Proceed runs on the committer thread; a waiter that blocks there holds the committer
// mid-way, which lets the test queue writers deterministically "while a commit is in flight".
class BlockingWaiter final : public WriteWaiter {
 public:
  void Proceed(int res) noexcept override {
    res_.set_value(res);
    release_.get_future().wait();
  }
  std::promise<int> res_;
  std::promise<void> release_;
};

TEST_F(DirtyTest, WritersQueuedDuringACommitShareTheNextOne) {
  auto t = Open(4096, true);
  BlockingWaiter first;
  ASSERT_EQ(t->MarkDirty(0, 0, &first), kWriteDeferred);
  auto first_res = first.res_.get_future();
  ASSERT_EQ(first_res.get(), 0);  // commit 1 is done; the committer is now held in Proceed
  EXPECT_EQ(t->commits(), 1u);
  std::vector<std::unique_ptr<SyncWaiter>> ws;
  std::vector<int> rcs;
  for (uint64_t c = 1; c <= 100; ++c) {
    ws.push_back(std::make_unique<SyncWaiter>());
    rcs.push_back(t->MarkDirty(c, c, ws.back().get()));
    EXPECT_EQ(rcs.back(), kWriteDeferred);
    EXPECT_FALSE(t->IsDirty(c));  // not durable yet: the write must wait
  }
  first.release_.set_value();
  for (size_t i = 0; i < ws.size(); ++i) EXPECT_EQ(ws[i]->Resolve(rcs[i]), 0);
  EXPECT_EQ(t->commits(), 2u);  // one synced batch for all 100 chunks
  EXPECT_EQ(t->DirtyChunks().size(), 101u);
}

// Many waiters on the same clean chunk: all are released by one commit, none early.
TEST_F(DirtyTest, SameChunkManyWaiters) {
  auto t = Open(64, true);
  std::vector<std::unique_ptr<SyncWaiter>> ws;
  std::vector<int> rcs;
  for (int i = 0; i < 16; ++i) {
    ws.push_back(std::make_unique<SyncWaiter>());
    rcs.push_back(t->MarkDirty(10, 12, ws.back().get()));
  }
  for (int i = 0; i < 16; ++i) EXPECT_EQ(ws[i]->Resolve(rcs[i]), 0);
  EXPECT_EQ(t->DirtyChunks(), (std::vector<uint64_t>{10, 11, 12}));
}

TEST_F(DirtyTest, FrozenGenerationIsKeptUntilCompletedAndUnionedAfterCrash) {
  {
    auto t = Open(256, true);
    Mark(*t, 1, 2);
    auto frozen = t->Freeze(t->PrepareFreeze());
    EXPECT_EQ(frozen.bits->SetBits(), (std::vector<uint64_t>{1, 2}));
    EXPECT_TRUE(t->DirtyChunks().empty());  // a fresh generation
    Mark(*t, 2, 3);
    // No completion: as if the daemon died while the snapshot was pending.
  }
  {
    auto t = Open(256, false);
    EXPECT_EQ(t->DirtyChunks(), (std::vector<uint64_t>{1, 2, 3}));
    // Now complete a snapshot: its frozen words go in the completion batch.
    auto frozen = t->Freeze(t->PrepareFreeze());
    Mark(*t, 100, 100);
    rocksdb::WriteBatch b;
    t->StageCompleted(b, frozen.generation);
    ASSERT_TRUE(db_->Write(b).ok());
  }
  auto t = Open(256, false);
  EXPECT_EQ(t->DirtyChunks(), (std::vector<uint64_t>{100}));
}

TEST_F(DirtyTest, UnfreezeMakesFrozenChunksDirtyAgain) {
  auto t = Open(256, true);
  Mark(*t, 4, 4);
  auto frozen = t->Freeze(t->PrepareFreeze());
  Mark(*t, 5, 5);
  ASSERT_TRUE(t->Unfreeze(frozen).ok());
  EXPECT_EQ(t->DirtyChunks(), (std::vector<uint64_t>{4, 5}));
  t.reset();
  t = Open(256, false);
  EXPECT_EQ(t->DirtyChunks(), (std::vector<uint64_t>{4, 5}));
}

TEST_F(DirtyTest, MissingStateNeedsRescanAndCountsEverythingDirty) {
  auto t = Open(100, false);
  EXPECT_TRUE(t->needs_rescan());
  EXPECT_NE(t->rescan_reason().find("no durable dirty state"), std::string::npos);
  EXPECT_EQ(t->DirtyChunks().size(), 100u);
  AtomicBitmap bits(100);
  bits.Set(42);
  ASSERT_TRUE(t->Reset(bits).ok());
  EXPECT_FALSE(t->needs_rescan());
  EXPECT_EQ(t->DirtyChunks(), (std::vector<uint64_t>{42}));
  t.reset();
  t = Open(100, false);
  EXPECT_FALSE(t->needs_rescan());
  EXPECT_EQ(t->DirtyChunks(), (std::vector<uint64_t>{42}));
}

TEST_F(DirtyTest, DamagedStateNeedsRescan) {
  { auto t = Open(100, true); }
  ASSERT_TRUE(db_->Put(Cf::kDirty, DirtyWordKey(7, 1, 0), "bad").ok());  // 3-byte word
  auto t = Open(100, false);
  EXPECT_TRUE(t->needs_rescan());
  t.reset();
  { auto t2 = Open(100, true); }
  // A header for a different chunk count (the volume was resized behind our back).
  t = Open(200, false);
  EXPECT_TRUE(t->needs_rescan());
  EXPECT_NE(t->rescan_reason().find("100 chunks"), std::string::npos) << t->rescan_reason();
}

}  // namespace
}  // namespace blocksnap::test
