// SnapshotRecord's stored JSON: the lock flag round-trips, and records written before locks
// existed (no "locked" key) still decode, as unlocked.
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "snapshot/snapshot_record.h"

namespace blocksnap {
namespace {

// A completed record exactly as builds before snapshot locks wrote it (FORMAT.md).
constexpr const char* kOldRecord =
    R"({"id":"snap-000000000000002a","volume_id":"vol-0000000000000003","volume":"db",)"
    R"("version":7,"state":"completed","error":"","created":"2026-11-24T01:02:03Z",)"
    R"("tags":{"k":"v"},"size":17179869184,"chunk_size":65536,"chunks":123,)"
    R"("added_bytes":8060928,"chunks_done":123,"chunks_total":123,"bytes_done":8060928,)"
    R"("bytes_total":8060928,"pause_us":412})";

TEST(SnapshotRecord, DecodesARecordWrittenBeforeLocksAsUnlocked) {
  auto r = DecodeSnapshotRecord(kOldRecord);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->IdString(), "snap-000000000000002a");
  EXPECT_EQ(r->volume_name, "db");
  EXPECT_EQ(r->version, 7u);
  EXPECT_TRUE(r->completed());
  EXPECT_EQ(r->tags.at("k"), "v");
  EXPECT_EQ(r->pause_us, 412u);
  EXPECT_FALSE(r->locked);
  EXPECT_EQ(SnapshotApiJson(*r).at("locked"), false);
}

TEST(SnapshotRecord, LockRoundTrips) {
  auto old = DecodeSnapshotRecord(kOldRecord);
  ASSERT_TRUE(old.ok());
  SnapshotRecord r = *old;
  r.locked = true;
  const std::string json = EncodeSnapshotRecord(r);
  EXPECT_EQ(nlohmann::json::parse(json).at("locked"), true);
  auto back = DecodeSnapshotRecord(json);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_TRUE(back->locked);
  EXPECT_EQ(SnapshotApiJson(*back).at("locked"), true);
  r.locked = false;
  back = DecodeSnapshotRecord(EncodeSnapshotRecord(r));
  ASSERT_TRUE(back.ok());
  EXPECT_FALSE(back->locked);
}

TEST(SnapshotRecord, ALockThatIsNotABooleanIsCorruption) {
  nlohmann::json j = nlohmann::json::parse(kOldRecord);
  j["locked"] = "yes";
  EXPECT_EQ(DecodeSnapshotRecord(j.dump()).status().code(), Code::kCorruption);
}

}  // namespace
}  // namespace blocksnap
