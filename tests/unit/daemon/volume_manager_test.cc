#include "volume/volume_manager.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <new>

#include "snapshot/snapshot_manager.h"
#include "volume/dirty_state.h"

namespace blocksnap {
namespace {

class VolumeManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("bs-vm-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    Reopen();
  }
  void TearDown() override {
    vm_.reset();
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Reopen() {
    vm_.reset();
    db_.reset();
    auto db = Db::Open((dir_ / "db").string());
    ASSERT_TRUE(db.ok()) << db.status().message();
    db_ = std::move(db).value();
    auto vm = VolumeManager::Open(*db_, dir_.string());
    ASSERT_TRUE(vm.ok()) << vm.status().message();
    vm_ = std::move(vm).value();
  }
  std::filesystem::path dir_;
  std::unique_ptr<Db> db_;
  std::unique_ptr<VolumeManager> vm_;
};

TEST_F(VolumeManagerTest, CreateMakesSparseImageAndRecord) {
  auto r = vm_->Create({"db", 64 << 20, 65536, {{"backup", "nightly"}}});
  ASSERT_TRUE(r.ok()) << r.status().message();
  struct stat st {};
  std::string path = (dir_ / "volumes" / (r->IdString() + ".img")).string();
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 64 << 20);
  EXPECT_EQ(st.st_blocks, 0);  // sparse: nothing allocated
  Reopen();
  auto back = vm_->Get("db");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->id, r->id);
  EXPECT_EQ(back->tags.at("backup"), "nightly");
  EXPECT_TRUE(vm_->Get(r->IdString()).ok());  // by id too
}

TEST_F(VolumeManagerTest, ErrorsChangeNothing) {
  ASSERT_TRUE(vm_->Create({"a", 1 << 20}).ok());
  EXPECT_EQ(vm_->Create({"a", 1 << 20}).status().code(), Code::kAlreadyExists);
  EXPECT_EQ(vm_->Create({"b", 1000}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(vm_->Create({"b/c", 1 << 20}).status().code(), Code::kInvalidArgument);
  // A name that reads as another volume's id would shadow it wherever "name or id" is taken.
  auto a = vm_->Get("a");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(vm_->Create({a->IdString(), 1 << 20}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(vm_->Create({"vol-00000000000000ff", 1 << 20}).status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(vm_->Create({"vol-backup", 1 << 20}).ok());  // only the exact id form is refused
  ASSERT_TRUE(vm_->Delete("vol-backup", false).ok());
  EXPECT_EQ(vm_->Create({"b", 1 << 20, 3000}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(vm_->Delete("zz", false).code(), Code::kNotFound);
  EXPECT_EQ(vm_->Tag("zz", {{"k", "v"}}, {}).status().code(), Code::kNotFound);
  EXPECT_EQ(vm_->Tag("a", {{"blocksnap:x", "v"}}, {}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(vm_->List().size(), 1u);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir_ / "volumes"),
                          std::filesystem::directory_iterator()),
            1);
}

TEST_F(VolumeManagerTest, TagUntagDeletePersist) {
  auto r = vm_->Create({"v", 1 << 20, 65536, {{"a", "1"}, {"b", "2"}}});
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(vm_->Tag("v", {{"c", "3"}, {"a", "9"}}, {"b"}).ok());
  Reopen();
  EXPECT_EQ(vm_->Get("v")->tags, (Tags{{"a", "9"}, {"c", "3"}}));
  ASSERT_TRUE(vm_->Delete("v", false).ok());
  EXPECT_FALSE(std::filesystem::exists(dir_ / "volumes" / (r->IdString() + ".img")));
  Reopen();
  EXPECT_TRUE(vm_->List().empty());
}

// The lifecycle observer runs without the manager's lock: the snapshot engine may wait, under
// its own lock, for NBD loops that look volumes up. Here the observer waits for a lookup
// made on another thread; with the lock held across the call it would wait forever.
TEST_F(VolumeManagerTest, LifecycleObserverRunsWithoutTheManagersLock) {
  ASSERT_TRUE(vm_->Create({"other", 1 << 20}).ok());
  struct Observer : VolumeLifecycle {
    VolumeManager* vm = nullptr;
    bool lookup_done = false;
    Status VolumeCreated(const std::shared_ptr<Volume>&) override {
      auto lookup = std::async(std::launch::async, [this] { return vm->Find("other").ok(); });
      // A guard against hanging the suite, not a synchronisation: the lookup needs
      // microseconds unless it is blocked.
      if (lookup.wait_for(std::chrono::seconds(20)) != std::future_status::ready) std::abort();
      lookup_done = lookup.get();
      return Status::Ok();
    }
    void VolumeDeleted(uint64_t) override {
      auto lookup = std::async(std::launch::async, [this] { return vm->Find("other").ok(); });
      if (lookup.wait_for(std::chrono::seconds(20)) != std::future_status::ready) std::abort();
    }
  } observer;
  observer.vm = vm_.get();
  vm_->set_lifecycle(&observer);
  ASSERT_TRUE(vm_->Create({"new", 1 << 20}).ok());
  EXPECT_TRUE(observer.lookup_done);
  // The name is reserved while the create is in progress, and published after.
  EXPECT_TRUE(vm_->Get("new").ok());
  EXPECT_TRUE(vm_->Delete("new", false).ok());
  EXPECT_EQ(vm_->Get("new").status().code(), Code::kNotFound);
  vm_->set_lifecycle(nullptr);
}

// An observer that cannot allocate the dirty bitmaps undoes the create: no record is left to
// fail the same way at every start.
TEST_F(VolumeManagerTest, OutOfMemoryInTheObserverUndoesTheCreate) {
  struct Observer : VolumeLifecycle {
    Status VolumeCreated(const std::shared_ptr<Volume>&) override { throw std::bad_alloc(); }
    void VolumeDeleted(uint64_t) override {}
  } observer;
  vm_->set_lifecycle(&observer);
  auto r = vm_->Create({"big", 1 << 20});
  EXPECT_EQ(r.status().code(), Code::kInternal);
  EXPECT_EQ(r.status().message(), "not enough memory to track the writes of volume 'big'");
  vm_->set_lifecycle(nullptr);
  EXPECT_TRUE(vm_->List().empty());
  Reopen();
  EXPECT_TRUE(vm_->List().empty());
  EXPECT_TRUE(std::filesystem::is_empty(dir_ / "volumes"));
  EXPECT_TRUE(vm_->Create({"big", 1 << 20}).ok());  // the name is free again
}

TEST_F(VolumeManagerTest, TooManyChunksIsRefused) {
  auto r = vm_->Create({"huge", (8ull << 40) + 4096, 4096});  // 2^31 + 1 chunks
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(std::filesystem::is_empty(dir_ / "volumes"));
  EXPECT_TRUE(vm_->Create({"huge", (8ull << 40) + 4096, 8192}).ok());
}

TEST_F(VolumeManagerTest, OrphanImageIsRemovedAtOpen) {
  std::string orphan = (dir_ / "volumes" / (FormatVolumeId(99) + ".img")).string();
  { std::ofstream(orphan) << "x"; }
  Reopen();
  EXPECT_FALSE(std::filesystem::exists(orphan));
}

// A crash inside a volume delete, between its record and its dirty state: the state of a
// volume without a record is removed when the snapshot manager recovers; a live volume's
// stays.
TEST_F(VolumeManagerTest, OrphanDirtyStateIsRemovedByRecovery) {
  auto live = vm_->Create({"live", 1 << 20});
  ASSERT_TRUE(live.ok());
  const uint64_t gone = 77;
  rocksdb::WriteBatch b;
  StageDirtyHeader(*db_, b, live->id, 16);
  StageDirtyHeader(*db_, b, gone, 16);
  StageDirtyWord(*db_, b, gone, 1, 0, 0xff);
  ASSERT_TRUE(db_->Write(b).ok());
  auto count = [&](uint64_t vol) {
    size_t n = 0;
    std::string prefix = DirtyHeaderKey(vol).substr(0, 8);
    EXPECT_TRUE(db_->ScanPrefix(Cf::kDirty, prefix, [&](auto, auto) { return ++n, true; }).ok());
    return n;
  };
  ASSERT_EQ(count(gone), 2u);
  auto snapshots = SnapshotManager::Open(*db_);
  ASSERT_TRUE(snapshots.ok()) << snapshots.status().message();
  EXPECT_EQ(count(gone), 0u);
  EXPECT_EQ(count(live->id), 1u);
}

}  // namespace
}  // namespace blocksnap
