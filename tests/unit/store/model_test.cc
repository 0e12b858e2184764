// Randomized model check: random writes (fresh data, zeros, duplicates of other chunks),
// snapshots, deletes in random order, restarts and interrupted snapshots, on a small volume.
// After every step each surviving snapshot must dump to the image the model recorded at its
// instant, and the store must be consistent. Deterministic: fixed seeds.
#include <random>

#include "test_util.h"

namespace blocksnap::test {
namespace {

constexpr uint64_t kChunk = 4096;
constexpr uint64_t kChunks = 24;

class ModelTest : public StoreTest, public ::testing::WithParamInterface<int> {
 protected:
  void Restart(SnapshotManagerOptions opts = {}) {
    CloseAll();
    OpenDb();
    OpenManager(opts);
    ASSERT_TRUE(mgr_->AttachVolume(vol_, /*created_now=*/false).ok());
  }
  void CheckAll() {
    for (auto& [id, image] : alive_) {
      auto r = mgr_->Get(id);
      ASSERT_TRUE(r.ok()) << id;
      ASSERT_EQ(r->state, "completed");
      ASSERT_EQ(Dump(*r), image) << id;
    }
    ExpectConsistent();
  }
  std::shared_ptr<Volume> vol_;
  std::map<std::string, std::string> alive_;  // completed snapshot -> image at its instant
};

TEST_P(ModelTest, RandomHistory) {
  std::mt19937_64 rng(static_cast<uint64_t>(GetParam()));
  auto pick = [&](uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng); };
  OpenManager();
  vol_ = AttachNew(1, kChunks * kChunk, kChunk);
  uint64_t seed = 100;
  for (int step = 0; step < 60 && !HasFatalFailure(); ++step) {
    uint64_t op = pick(100);
    if (op < 50) {  // write 1..4 chunks
      for (uint64_t n = pick(4) + 1; n > 0; --n) {
        uint64_t c = pick(kChunks);
        uint64_t kind = pick(10);
        if (kind == 0)
          WriteChunk(*vol_, c, std::string(kChunk, '\0'));
        else if (kind == 1)
          WriteChunk(*vol_, c, Pattern(kChunk, 0, 1));  // shared content: dedup
        else
          WritePattern(*vol_, c, ++seed);
      }
    } else if (op < 72) {  // snapshot
      auto s = Snap(*vol_);
      alive_[s.IdString()] = Image(*vol_);
    } else if (op < 87) {  // delete a random snapshot
      if (alive_.empty()) continue;
      auto it = std::next(alive_.begin(), static_cast<long>(pick(alive_.size())));
      ASSERT_TRUE(mgr_->Delete(it->first).ok());
      alive_.erase(it);
    } else if (op < 94) {  // clean restart
      Restart();
    } else {  // a snapshot interrupted after k commits, then a restart
      SnapshotManagerOptions crashy;
      crashy.job.flush_bytes = 1;
      crashy.job.stop_after_flushes = pick(3) + 1;
      Restart(crashy);
      auto s = mgr_->Create(vol_->id(), {});
      ASSERT_TRUE(s.ok());
      auto r = mgr_->Wait(s->IdString());
      ASSERT_TRUE(r.ok());
      if (r->completed()) alive_[r->IdString()] = Image(*vol_);  // fewer chunks than k
      Restart();
      if (!r->completed()) {
        EXPECT_EQ(mgr_->Get(s->IdString())->state, "error");
        ASSERT_TRUE(mgr_->Delete(s->IdString()).ok());
      }
    }
    CheckAll();
  }
  // A final snapshot equals the live image; then everything goes and the store is empty.
  auto last = Snap(*vol_);
  EXPECT_EQ(Dump(last), Image(*vol_));
  alive_[last.IdString()] = Image(*vol_);
  for (auto& [id, img] : alive_) ASSERT_TRUE(mgr_->Delete(id).ok());
  DeleteVolumeRecord(vol_->id());
  ASSERT_TRUE(mgr_->VolumeDeleted(vol_->id()).ok());
  EXPECT_EQ(StoredChunks(), 0u);
  EXPECT_TRUE(Refs().empty());
  EXPECT_TRUE(Scan(Cf::kMap).empty());
}

INSTANTIATE_TEST_SUITE_P(Seeds, ModelTest, ::testing::Range(1, 13));

}  // namespace
}  // namespace blocksnap::test
