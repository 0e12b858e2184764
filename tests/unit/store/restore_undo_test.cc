// Undoing a restore that failed halfway: nothing of it may stay behind (block map entries
// kept alive by a record, hydration state).
#include <vector>

#include "snapshot/restore_manager.h"
#include "test_util.h"
#include "volume/volume_manager.h"

namespace blocksnap::test {
namespace {

// Notes, when told a volume was deleted, whether its record was still there: the snapshot
// engine's GC keeps a volume's entries while it is.
class RecordingLifecycle final : public VolumeLifecycle {
 public:
  explicit RecordingLifecycle(Db& db) : db_(db) {}
  Status VolumeCreated(const std::shared_ptr<Volume>&) override { return Status::Ok(); }
  void VolumeDeleted(uint64_t id) override {
    auto r = db_.Get(Cf::kMeta, "vol/" + FormatVolumeId(id));
    record_present.push_back(!r.ok() || r->has_value());
  }
  std::vector<bool> record_present;

 private:
  Db& db_;
};

class RestoreUndoTest : public StoreTest {
 protected:
  std::unique_ptr<VolumeManager> OpenVolumes() {
    auto vm = VolumeManager::Open(*db_, dir_.string());
    EXPECT_TRUE(vm.ok()) << vm.status().message();
    return vm.ok() ? std::move(vm).value() : nullptr;
  }
  size_t HydrateKeys() {
    size_t n = 0;
    EXPECT_TRUE(db_->ScanPrefix(Cf::kMeta, "hydrate/",
                                [&](std::string_view, std::string_view) {
                                  ++n;
                                  return true;
                                })
                    .ok());
    return n;
  }
};

// A create whose prepare step (a restore's) fails is undone record first: when the observer
// hears of it, the volume no longer exists, so the entries prepared for it are collected
// now, not at the next start.
TEST_F(RestoreUndoTest, FailedCreateDropsTheRecordBeforeTellingTheObserver) {
  auto vm = OpenVolumes();
  ASSERT_TRUE(vm);
  RecordingLifecycle lifecycle(*db_);
  vm->set_lifecycle(&lifecycle);
  CreateVolumeRequest req;
  req.name = "r";
  req.size = 1 << 20;
  req.chunk_size = 64 << 10;
  req.prepare = [](const std::shared_ptr<Volume>&) { return IOError("prepare failed"); };
  auto r = vm->Create(req);
  EXPECT_EQ(r.status().code(), Code::kIOError) << r.status().message();
  EXPECT_EQ(lifecycle.record_present, std::vector<bool>{false});
  EXPECT_TRUE(vm->List().empty());
  EXPECT_TRUE(std::filesystem::is_empty(dir_ / "volumes"));
  vm->set_lifecycle(nullptr);
}

// A deleted volume's hydration state goes even when no hydration of it is running (a
// restore undone before its hydration started had written the base key).
TEST_F(RestoreUndoTest, VolumeDeletedDropsHydrationStateWithoutAHydration) {
  auto vm = OpenVolumes();
  ASSERT_TRUE(vm);
  OpenManager();
  RestoreManager restore(*db_, *vm, *mgr_, 0);
  ASSERT_TRUE(db_->Put(Cf::kMeta, HydrateKey(42), "7").ok());
  ASSERT_TRUE(
      db_->Put(Cf::kMeta, HydrateKey(42) + "/" + std::string(8, '\0'), std::string(8, '\xff'))
          .ok());
  ASSERT_TRUE(db_->Put(Cf::kMeta, HydrateKey(43), "9").ok());  // another volume's
  restore.VolumeDeleted(42);
  EXPECT_EQ(HydrateKeys(), 1u);
  auto other = db_->Get(Cf::kMeta, HydrateKey(43));
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->has_value());
}

}  // namespace
}  // namespace blocksnap::test
