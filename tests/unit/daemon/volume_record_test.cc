#include "volume/volume_record.h"

#include <gtest/gtest.h>

namespace blocksnap {
namespace {

TEST(VolumeId, FormatAndParse) {
  EXPECT_EQ(FormatVolumeId(42), "vol-000000000000002a");
  EXPECT_EQ(*ParseVolumeId("vol-000000000000002a"), 42u);
  EXPECT_FALSE(ParseVolumeId("vol-2a").ok());
  EXPECT_FALSE(ParseVolumeId("snap-000000000000002a").ok());
  EXPECT_FALSE(ParseVolumeId("vol-00000000000000zz").ok());
}

TEST(VolumeRecord, RoundTrip) {
  VolumeRecord r;
  r.id = 7;
  r.name = "db";
  r.size = 1ull << 30;
  r.chunk_size = 128 * 1024;
  r.tags = {{"backup", "nightly"}, {"env", "prod"}};
  r.created = *ParseRfc3339("2026-11-23T03:00:00Z");
  auto back = DecodeVolumeRecord(EncodeVolumeRecord(r));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->id, 7u);
  EXPECT_EQ(back->name, "db");
  EXPECT_EQ(back->size, 1ull << 30);
  EXPECT_EQ(back->chunk_size, 128u * 1024);
  EXPECT_EQ(back->tags, r.tags);
  EXPECT_EQ(back->state, "available");
  EXPECT_EQ(FormatRfc3339(back->created), "2026-11-23T03:00:00Z");
  EXPECT_EQ(r.Key(), "vol/vol-0000000000000007");
}

TEST(VolumeRecord, DecodeRejectsDamage) {
  EXPECT_EQ(DecodeVolumeRecord("not json").status().code(), Code::kCorruption);
  EXPECT_EQ(DecodeVolumeRecord("{\"id\":\"vol-0000000000000001\"}").status().code(),
            Code::kCorruption);
  EXPECT_EQ(DecodeVolumeRecord("[1,2]").status().code(), Code::kCorruption);
}

}  // namespace
}  // namespace blocksnap
