// Deleting snapshots (DESIGN.md §3): any snapshot, in any order; what another snapshot or the
// live volume still reads stays, the rest is freed.
#include <algorithm>

#include "scheduler/snapshot_executor.h"
#include "test_util.h"

namespace blocksnap::test {
namespace {

constexpr uint64_t kChunk = 4096;
constexpr uint64_t kChunks = 8;

class DeleteTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    OpenManager();
    vol_ = AttachNew(1, kChunks * kChunk, kChunk);
    BuildChain();
  }

  // Five snapshots with overlapping changes, zeroing, and a chunk equal to another's.
  void BuildChain() {
    auto w = [&](uint64_t c, uint64_t seed) { WritePattern(*vol_, c, seed); };
    for (uint64_t c : {0, 1, 2, 3}) w(c, 1);
    Take();
    for (uint64_t c : {1, 2, 4}) w(c, 2);
    Take();
    w(2, 3);
    w(5, 3);
    WriteChunk(*vol_, 0, std::string(kChunk, '\0'));
    Take();
    for (uint64_t c : {1, 3, 5, 6}) w(c, 4);
    Take();
    w(2, 5);
    w(7, 5);
    WriteChunk(*vol_, 6, Pattern(kChunk, 0, 1));  // same bytes as snapshot 1's chunk 0
    Take();
  }
  void Take() {
    auto s = Snap(*vol_);
    snaps_.push_back(s);
    images_[s.IdString()] = Image(*vol_);
  }
  // Every snapshot not yet deleted still dumps to its image; the store is consistent.
  void CheckRemaining() {
    auto list = mgr_->List();
    ASSERT_TRUE(list.ok());
    std::set<std::string> alive;
    for (auto& s : *list) alive.insert(s.IdString());
    for (auto& s : snaps_) {
      if (deleted_.contains(s.IdString())) {
        EXPECT_FALSE(alive.contains(s.IdString()));
        continue;
      }
      ASSERT_TRUE(alive.contains(s.IdString()));
      EXPECT_EQ(Dump(s), images_[s.IdString()]) << s.IdString();
    }
    ExpectConsistent();
  }
  void Delete(size_t i) {
    Status st = mgr_->Delete(snaps_[i].IdString());
    ASSERT_TRUE(st.ok()) << st.message();
    deleted_.insert(snaps_[i].IdString());
    EXPECT_EQ(mgr_->Get(snaps_[i].IdString()).status().code(), Code::kNotFound);
  }
  void DeleteVolume() {
    DeleteVolumeRecord(vol_->id());
    Status st = mgr_->VolumeDeleted(vol_->id());
    ASSERT_TRUE(st.ok()) << st.message();
  }
  void ExpectEmpty() {
    EXPECT_EQ(StoredChunks(), 0u);
    EXPECT_TRUE(Refs().empty());
    EXPECT_TRUE(Scan(Cf::kMap).empty());
    EXPECT_TRUE(Scan(Cf::kDirty).empty());
    auto st = mgr_->Stats();
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->chunks, 0u);
    EXPECT_EQ(st->stored_bytes, 0u);
    EXPECT_EQ(st->referenced_bytes, 0u);
  }

  std::shared_ptr<Volume> vol_;
  std::vector<SnapshotRecord> snaps_;
  std::map<std::string, std::string> images_;
  std::set<std::string> deleted_;
};

TEST_F(DeleteTest, ChainIsIntact) {
  CheckRemaining();
}

TEST_F(DeleteTest, DeleteMiddle) {
  Delete(2);
  CheckRemaining();
  Delete(1);
  CheckRemaining();
}

TEST_F(DeleteTest, DeleteNewestKeepsWhatTheNextIncrementalNeeds) {
  const uint64_t before = StoredChunks();
  Delete(4);
  CheckRemaining();
  // The live volume still reads snapshot 5's entries as its base: nothing may be freed.
  EXPECT_EQ(StoredChunks(), before);
  // The next snapshot is incremental against the deleted one's data and must be right.
  WritePattern(*vol_, 3, 9);
  Take();
  EXPECT_EQ(snaps_.back().chunks, 1u);
  CheckRemaining();
}

TEST_F(DeleteTest, DeleteOldest) {
  Delete(0);
  CheckRemaining();
  Delete(1);
  CheckRemaining();
}

TEST_F(DeleteTest, DeleteAllButOne) {
  for (size_t keep = 0; keep < 5; ++keep) {
    SCOPED_TRACE("keep " + std::to_string(keep));
    for (size_t i = 0; i < 5; ++i)
      if (i != keep && !deleted_.contains(snaps_[i].IdString())) Delete(i);
    CheckRemaining();
    // Rebuild for the next round on a fresh volume of the same store.
    if (keep < 4) {
      Delete(keep);
      DeleteVolume();
      ExpectEmpty();
      snaps_.clear();
      images_.clear();
      deleted_.clear();
      vol_ = AttachNew(10 + keep, kChunks * kChunk, kChunk);
      BuildChain();
    }
  }
}

TEST_F(DeleteTest, StoreIsEmptyAfterDeletingEverything) {
  for (size_t i = 0; i < 5; ++i) Delete(i);
  CheckRemaining();
  EXPECT_GT(StoredChunks(), 0u);  // the live volume's base
  DeleteVolume();
  ExpectEmpty();
}

TEST_F(DeleteTest, DeletingTheVolumeFirstKeepsItsSnapshots) {
  DeleteVolume();
  CheckRemaining();
  for (size_t i : {3, 0, 4, 1, 2}) {
    Delete(i);
    CheckRemaining();
  }
  ExpectEmpty();
}

// A locked snapshot is not deleted, by anyone, until it is unlocked: Delete fails with
// kLocked and frees nothing; the lock is durable and outlives its volume.
TEST_F(DeleteTest, ALockedSnapshotIsNotDeletedUntilUnlocked) {
  const std::string id = snaps_[2].IdString();
  auto locked = mgr_->SetLocked(id, true);
  ASSERT_TRUE(locked.ok()) << locked.status().message();
  EXPECT_TRUE(locked->locked);
  const uint64_t chunks = StoredChunks();
  const auto refs = Refs();
  const auto map = Scan(Cf::kMap);

  Status st = mgr_->Delete(id);
  EXPECT_EQ(st.code(), Code::kLocked);
  EXPECT_EQ(st.message(),
            "snapshot " + id + " of volume vol1 is locked; unlock it before deleting it");
  auto rec = mgr_->Get(id);
  ASSERT_TRUE(rec.ok());
  EXPECT_TRUE(rec->locked);
  EXPECT_EQ(StoredChunks(), chunks);
  EXPECT_EQ(Refs(), refs);
  EXPECT_EQ(Scan(Cf::kMap), map);
  EXPECT_FALSE(mgr_->Deleted(snaps_[2].id));
  CheckRemaining();

  // Locking again changes nothing; the others are still deletable around it.
  ASSERT_TRUE(mgr_->SetLocked(id, true).ok());
  Delete(1);
  Delete(3);
  CheckRemaining();

  // Durable: after a restart and the volume's deletion it is still there and still locked.
  CloseAll();
  OpenDb();
  OpenManager();
  DeleteVolume();
  rec = mgr_->Get(id);
  ASSERT_TRUE(rec.ok());
  EXPECT_TRUE(rec->locked);
  EXPECT_EQ(mgr_->Delete(id).code(), Code::kLocked);
  CheckRemaining();

  auto unlocked = mgr_->SetLocked(id, false);
  ASSERT_TRUE(unlocked.ok()) << unlocked.status().message();
  EXPECT_FALSE(unlocked->locked);
  EXPECT_FALSE(mgr_->Get(id)->locked);
  Delete(2);
  CheckRemaining();
  for (size_t i : {0, 4}) Delete(i);
  ExpectEmpty();
}

TEST_F(DeleteTest, LockingAMissingSnapshotIsNotFound) {
  EXPECT_EQ(mgr_->SetLocked("snap-00000000000000ff", true).status().code(), Code::kNotFound);
  EXPECT_EQ(mgr_->SetLocked("nonsense", true).status().code(), Code::kInvalidArgument);
}

// Policy retention sees the records' locks (and so neither deletes nor counts them).
TEST_F(DeleteTest, RetentionSeesTheLock) {
  ASSERT_TRUE(mgr_->SetLocked(snaps_[0].IdString(), true).ok());
  ASSERT_TRUE(mgr_->SetLocked(snaps_[3].IdString(), true).ok());
  auto list = mgr_->List();
  ASSERT_TRUE(list.ok());
  auto infos = scheduler::SnapshotInfos(*list, /*test_clock=*/false);
  ASSERT_EQ(infos.size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(infos[i].id, snaps_[i].IdString());
    EXPECT_EQ(infos[i].locked, i == 0 || i == 3) << infos[i].id;
  }
}

// Every one of the 120 orders of deleting the 5 snapshots, each on a copy of the same
// store: after each delete every remaining snapshot reads identically.
TEST_F(DeleteTest, EveryOrderOfFive) {
  CloseAll();
  const auto master = dir_ / "db-master";
  std::filesystem::rename(dir_ / "db", master);
  std::vector<size_t> order = {0, 1, 2, 3, 4};
  int rounds = 0;
  do {
    std::string trace;
    for (size_t i : order) trace += std::to_string(i);
    SCOPED_TRACE("order " + trace);
    CloseAll();
    std::filesystem::remove_all(dir_ / "db");
    std::filesystem::copy(master, dir_ / "db", std::filesystem::copy_options::recursive);
    OpenDb();
    OpenManager();
    deleted_.clear();
    for (size_t i : order) {
      Delete(i);
      CheckRemaining();
      if (HasFatalFailure()) return;
    }
    DeleteVolume();
    ExpectEmpty();
    ++rounds;
  } while (std::next_permutation(order.begin(), order.end()));
  EXPECT_EQ(rounds, 120);
}

}  // namespace
}  // namespace blocksnap::test
