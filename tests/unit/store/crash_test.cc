// Crash simulation: the manager and the DB are closed while a snapshot is pending (its job
// stopped after some of its batches were committed, as a kill would leave it), then reopened.
#include "test_util.h"

namespace blocksnap::test {
namespace {

constexpr uint64_t kChunk = 4096;

class CrashTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    OpenManager();
    vol_ = AttachNew(1, 64 * kChunk, kChunk);
  }
  // Restarts with `opts` and re-attaches the volume (not fresh: its state is loaded).
  void Restart(SnapshotManagerOptions opts = {}) {
    CloseAll();
    OpenDb();
    OpenManager(opts);
    ASSERT_TRUE(mgr_->AttachVolume(vol_, /*created_now=*/false).ok());
  }
  uint64_t EntriesOfVersion(uint64_t version) {
    uint64_t n = 0;
    for (auto& [k, v] : Scan(Cf::kMap)) {
      uint64_t vol, c, ver;
      if (ParseMapKey(k, vol, c, ver) && ver == version) ++n;
    }
    return n;
  }
  std::shared_ptr<Volume> vol_;
};

TEST_F(CrashTest, PendingSnapshotBecomesErrorAndReleasesWhatItTook) {
  for (uint64_t c = 0; c < 10; ++c) WritePattern(*vol_, c, 1);
  auto s1 = Snap(*vol_);
  std::string img1 = Image(*vol_);
  const uint64_t stored1 = StoredChunks();
  for (uint64_t c = 5; c < 15; ++c) WritePattern(*vol_, c, 2);

  SnapshotManagerOptions crashy;
  crashy.job.flush_bytes = 1;         // commit after every chunk
  crashy.job.stop_after_flushes = 3;  // then "die" after the third commit
  Restart(crashy);
  auto s2 = mgr_->Create(vol_->id(), {});
  ASSERT_TRUE(s2.ok()) << s2.status().message();
  auto stuck = mgr_->Wait(s2->IdString());
  ASSERT_TRUE(stuck.ok());
  EXPECT_EQ(stuck->state, "pending");
  EXPECT_EQ(EntriesOfVersion(s2->version), 3u);  // part of it is in RocksDB
  EXPECT_GT(StoredChunks(), stored1);

  Restart();
  auto after = mgr_->Get(s2->IdString());
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->state, "error");
  EXPECT_NE(after->error.find("interrupted"), std::string::npos) << after->error;
  EXPECT_EQ(EntriesOfVersion(s2->version), 0u);
  EXPECT_EQ(StoredChunks(), stored1);
  ExpectConsistent();
  EXPECT_EQ(DumpTo(s2->IdString(), (dir_ / "x").string()).code(), Code::kBusy);
  // Every chunk changed since s1 is still dirty (the frozen generation was folded back).
  auto dirty = (*mgr_->Tracking(vol_->id()))->tracker().DirtyChunks();
  EXPECT_EQ(dirty, (std::vector<uint64_t>{5, 6, 7, 8, 9, 10, 11, 12, 13, 14}));
  // The next snapshot is correct and so is the old one.
  auto s3 = Snap(*vol_);
  EXPECT_EQ(s3.chunks, 10u);
  EXPECT_EQ(Dump(s3), Image(*vol_));
  EXPECT_EQ(Dump(s1), img1);
  // The failed snapshot can be deleted like any other.
  ASSERT_TRUE(mgr_->Delete(s2->IdString()).ok());
  ExpectConsistent();
}

// A "kill" after each possible number of committed batches of one snapshot.
TEST_F(CrashTest, EveryCommitBoundary) {
  for (uint64_t c = 0; c < 8; ++c) WritePattern(*vol_, c, 1);
  auto s1 = Snap(*vol_);
  std::string img1 = Image(*vol_);
  for (uint64_t c = 4; c < 12; ++c) WritePattern(*vol_, c, 2);
  for (uint64_t k = 1; k < 8; ++k) {
    SCOPED_TRACE("after " + std::to_string(k) + " commits");
    SnapshotManagerOptions crashy;
    crashy.job.flush_bytes = 1;
    crashy.job.stop_after_flushes = k;
    Restart(crashy);
    auto s = mgr_->Create(vol_->id(), {});
    ASSERT_TRUE(s.ok());
    ASSERT_EQ(mgr_->Wait(s->IdString())->state, "pending");
    EXPECT_EQ(EntriesOfVersion(s->version), k);
    Restart();
    EXPECT_EQ(mgr_->Get(s->IdString())->state, "error");
    EXPECT_EQ(EntriesOfVersion(s->version), 0u);
    EXPECT_EQ((*mgr_->Tracking(vol_->id()))->tracker().DirtyChunks(),
              (std::vector<uint64_t>{4, 5, 6, 7, 8, 9, 10, 11}));
    ExpectConsistent();
    EXPECT_EQ(Dump(s1), img1);
  }
  auto last = Snap(*vol_);
  EXPECT_EQ(last.chunks, 8u);
  EXPECT_EQ(Dump(last), Image(*vol_));
  ExpectConsistent();
}

TEST_F(CrashTest, WritesAfterTheInstantSurviveTheCrashToo) {
  for (uint64_t c = 0; c < 4; ++c) WritePattern(*vol_, c, 1);
  SnapshotManagerOptions held;
  held.job.hold_sweep = true;  // the copy never starts before the "crash"
  Restart(held);
  auto s = mgr_->Create(vol_->id(), {});
  ASSERT_TRUE(s.ok());
  WritePattern(*vol_, 2, 2);   // copy-before-write of chunk 2, dirty in the new generation
  WritePattern(*vol_, 20, 2);  // a chunk outside the frozen set
  Restart();
  EXPECT_EQ(mgr_->Get(s->IdString())->state, "error");
  EXPECT_EQ((*mgr_->Tracking(vol_->id()))->tracker().DirtyChunks(),
            (std::vector<uint64_t>{0, 1, 2, 3, 20}));
  auto s2 = Snap(*vol_);
  EXPECT_EQ(Dump(s2), Image(*vol_));
  ExpectConsistent();
}

TEST_F(CrashTest, InterruptedDeleteIsFinishedByRecovery) {
  for (uint64_t c = 0; c < 6; ++c) WritePattern(*vol_, c, 1);
  auto s1 = Snap(*vol_);
  for (uint64_t c = 0; c < 6; ++c) WritePattern(*vol_, c, 2);
  auto s2 = Snap(*vol_);
  EXPECT_EQ(StoredChunks(), 12u);
  // The record is gone but the GC never ran (a crash between the two steps of Delete).
  ASSERT_TRUE(db_->Delete(Cf::kMeta, s1.Key()).ok());
  Restart();
  EXPECT_EQ(StoredChunks(), 6u);
  ExpectConsistent();
  EXPECT_EQ(Dump(s2), Image(*vol_));
}

TEST_F(CrashTest, VolumeDeletedWhileSnapshotPendingFailsIt) {
  for (uint64_t c = 0; c < 4; ++c) WritePattern(*vol_, c, 1);
  SnapshotManagerOptions held;
  held.job.hold_sweep = true;
  Restart(held);
  auto s = mgr_->Create(vol_->id(), {});
  ASSERT_TRUE(s.ok());
  DeleteVolumeRecord(vol_->id());
  ASSERT_TRUE(mgr_->VolumeDeleted(vol_->id()).ok());
  auto r = mgr_->Get(s->IdString());
  EXPECT_EQ(r->state, "error");
  ASSERT_TRUE(mgr_->Delete(s->IdString()).ok());
  EXPECT_EQ(StoredChunks(), 0u);
  EXPECT_TRUE(Scan(Cf::kMap).empty());
  EXPECT_TRUE(Scan(Cf::kDirty).empty());
}

}  // namespace
}  // namespace blocksnap::test
