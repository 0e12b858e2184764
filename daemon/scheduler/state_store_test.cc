#include "scheduler/state_store.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace blocksnap::scheduler {
namespace {

policy::TimePoint At(const char* text) {
  policy::TimePoint t;
  EXPECT_TRUE(policy::ParseTimestamp(text, &t)) << text;
  return t;
}

class StateStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() / ("state_store_test_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    auto db = Db::Open(dir_.string());
    ASSERT_TRUE(db.ok()) << db.status().message();
    db_ = std::move(db).value();
  }
  void TearDown() override {
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir_;
  std::unique_ptr<Db> db_;
};

TEST_F(StateStoreTest, EmptyWhenNothingSaved) {
  auto state = LoadState(*db_);
  ASSERT_TRUE(state.ok());
  EXPECT_TRUE(state->last_slot.empty());
}

TEST_F(StateStoreTest, RoundTripKeepsEntriesOfRemovedPolicies) {
  policy::SchedulerState s;
  s.last_slot[{"db-nightly", "nightly"}] = At("2026-01-05T03:00:00Z");
  s.last_slot[{"web", "hourly"}] = At("2026-01-05T04:00:00Z");
  ASSERT_TRUE(SaveState(*db_, s).ok());
  // A later save without "web" (its file was removed) leaves its entry alone.
  policy::SchedulerState later;
  later.last_slot[{"db-nightly", "nightly"}] = At("2026-01-06T03:00:00Z");
  ASSERT_TRUE(SaveState(*db_, later).ok());

  auto loaded = LoadState(*db_);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->last_slot.size(), 2u);
  EXPECT_EQ((loaded->last_slot[{"db-nightly", "nightly"}]), At("2026-01-06T03:00:00Z"));
  EXPECT_EQ((loaded->last_slot[{"web", "hourly"}]), At("2026-01-05T04:00:00Z"));
  auto raw = db_->Get(Cf::kMeta, "policy/db-nightly/nightly");
  ASSERT_TRUE(raw.ok() && raw->has_value());
  EXPECT_EQ(**raw, "2026-01-06T03:00:00Z");
}

// One malformed entry (a bad value, a key without a schedule part) must not stop the
// daemon: it is dropped and reported, the others load, and its schedule starts now.
TEST_F(StateStoreTest, MalformedEntriesAreDroppedNotFatal) {
  ASSERT_TRUE(db_->Put(Cf::kMeta, "policy/p/s", "yesterday").ok());
  ASSERT_TRUE(db_->Put(Cf::kMeta, "policy/noschedule", "2026-01-05T03:00:00Z").ok());
  ASSERT_TRUE(db_->Put(Cf::kMeta, "policy/q/t", "2026-01-05T03:00:00Z").ok());
  std::vector<std::string> dropped;
  auto loaded = LoadState(*db_, &dropped);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  ASSERT_EQ(loaded->last_slot.size(), 1u);
  EXPECT_EQ((loaded->last_slot[{"q", "t"}]), At("2026-01-05T03:00:00Z"));
  EXPECT_EQ(dropped, (std::vector<std::string>{
                         "scheduler state 'policy/noschedule' is malformed: "
                         "'2026-01-05T03:00:00Z'; dropped, its schedule starts now",
                         "scheduler state 'policy/p/s' is malformed: 'yesterday'; dropped, its "
                         "schedule starts now"}));
  // The next save (the schedule seen again) replaces the bad value.
  policy::SchedulerState s;
  s.last_slot[{"p", "s"}] = At("2026-01-06T03:00:00Z");
  ASSERT_TRUE(SaveState(*db_, s).ok());
  dropped.clear();
  loaded = LoadState(*db_, &dropped);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ((loaded->last_slot[{"p", "s"}]), At("2026-01-06T03:00:00Z"));
  EXPECT_EQ(dropped.size(), 1u);
}

}  // namespace
}  // namespace blocksnap::scheduler
