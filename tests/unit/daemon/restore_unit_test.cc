// [restore] Unit tests of the restore/export building blocks: the restore fields of volume
// records, and the snapshot exports' chunk cache.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "io/chunk_cache.h"
#include "volume/volume_record.h"

namespace blocksnap {
namespace {

TEST(RestoreRecord, RoundTripsOriginAndHydration) {
  VolumeRecord r;
  r.id = 9;
  r.name = "copy";
  r.size = 1 << 20;
  r.created = *ParseRfc3339("2026-11-23T03:00:00Z");
  r.state = "hydrating";
  r.origin_snapshot = "snap-000000000000002a";
  r.hydrated_bytes = 65536;
  r.hydrate_total_bytes = 131072;
  r.fast_restore = true;
  auto back = DecodeVolumeRecord(EncodeVolumeRecord(r));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->state, "hydrating");
  EXPECT_EQ(back->origin_snapshot, "snap-000000000000002a");
  EXPECT_EQ(back->hydrated_bytes, 65536u);
  EXPECT_EQ(back->hydrate_total_bytes, 131072u);
  EXPECT_TRUE(back->fast_restore);
}

TEST(RestoreRecord, PlainVolumesStoreNoRestoreFields) {
  VolumeRecord r;
  r.id = 1;
  r.name = "plain";
  r.size = 4096;
  const std::string json = EncodeVolumeRecord(r);
  EXPECT_EQ(json.find("origin"), std::string::npos);
  auto back = DecodeVolumeRecord(json);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->origin_snapshot.empty());
  EXPECT_EQ(back->hydrate_total_bytes, 0u);
}

TEST(ChunkCache, EvictsLeastRecentlyUsedByBytes) {
  io::ChunkCache cache(3 * 100);
  for (uint64_t c = 0; c < 3; ++c) cache.Insert({1, c}, std::string(100, char('a' + c)));
  uint8_t out[10];
  ASSERT_TRUE(cache.CopyOut({1, 0}, 5, 10, out));  // chunk 0 is now the most recent
  EXPECT_EQ(out[0], 'a');
  cache.Insert({1, 3}, std::string(100, 'd'));  // evicts chunk 1
  EXPECT_TRUE(cache.Contains({1, 0}));
  EXPECT_FALSE(cache.Contains({1, 1}));
  EXPECT_TRUE(cache.Contains({1, 2}));
  EXPECT_TRUE(cache.Contains({1, 3}));
  EXPECT_EQ(cache.bytes(), 300u);
  EXPECT_FALSE(cache.Contains({2, 0}));              // keyed by snapshot too
  EXPECT_FALSE(cache.CopyOut({1, 0}, 95, 10, out));  // past the chunk
  cache.Insert({1, 9}, std::string(1000, 'x'));      // bigger than the budget: not kept
  EXPECT_FALSE(cache.Contains({1, 9}));
  EXPECT_EQ(cache.entries(), 3u);
}

TEST(ChunkCache, ConcurrentUseStaysWithinBudget) {
  io::ChunkCache cache(64 * 1024);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&cache, t] {
      uint8_t out[16];
      for (uint64_t i = 0; i < 2000; ++i) {
        io::ChunkCache::Key k{uint64_t(t), i % 50};
        if (!cache.CopyOut(k, 0, 16, out)) cache.Insert(k, std::string(4096, char(i)));
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_LE(cache.bytes(), 64u * 1024);
}

}  // namespace
}  // namespace blocksnap
