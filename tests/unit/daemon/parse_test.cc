#include "util/parse.h"

#include <gtest/gtest.h>

namespace blocksnap {
namespace {

TEST(ParseSize, Suffixes) {
  EXPECT_EQ(*ParseSize("4096"), 4096u);
  EXPECT_EQ(*ParseSize("512K"), 512u * 1024);
  EXPECT_EQ(*ParseSize("64M"), 64u << 20);
  EXPECT_EQ(*ParseSize("1G"), 1ull << 30);
  EXPECT_EQ(*ParseSize("1GiB"), 1ull << 30);
  EXPECT_EQ(*ParseSize("2T"), 2ull << 40);
  EXPECT_EQ(*ParseSize("1g"), 1ull << 30);
}

TEST(ParseSize, RejectsGarbage) {
  for (const char* bad :
       {"", "G", "-1", "1.5G", "10X", "1GG", " 1G", "99999999999999999999", "16777216T"}) {
    auto r = ParseSize(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << bad;
  }
  EXPECT_EQ(ParseSize("10X").status().message(), "invalid size suffix in '10X': use K, M, G or T");
}

TEST(ValidateVolumeSize, MultipleOf4096) {
  EXPECT_TRUE(ValidateVolumeSize(4096).ok());
  EXPECT_TRUE(ValidateVolumeSize(1ull << 40).ok());
  EXPECT_FALSE(ValidateVolumeSize(0).ok());
  EXPECT_FALSE(ValidateVolumeSize(1000).ok());
  EXPECT_EQ(ValidateVolumeSize(4097).message(),
            "invalid size 4097: must be a multiple of 4096 bytes");
}

TEST(ValidateChunkSize, PowerOfTwoFrom4KTo4M) {
  for (uint64_t ok : {4096ull, 8192ull, 65536ull, 4ull << 20})
    EXPECT_TRUE(ValidateChunkSize(ok).ok());
  for (uint64_t bad : {0ull, 2048ull, 3000ull, 12288ull, 8ull << 20})
    EXPECT_FALSE(ValidateChunkSize(bad).ok()) << bad;
}

TEST(ValidateChunkCount, AtMost2To31Chunks) {
  EXPECT_TRUE(ValidateChunkCount(128ull << 40, 65536).ok());           // 128 TiB: 2^31 chunks
  EXPECT_TRUE(ValidateChunkCount((8ull << 40) + 4096, 4 << 20).ok());  // a partial last chunk
  EXPECT_FALSE(ValidateChunkCount((128ull << 40) + 4096, 65536).ok());
  EXPECT_EQ(ValidateChunkCount(1ull << 50, 65536).message(),
            "invalid size 1 PiB with chunk size 64 KiB: 17179869184 chunks, more than the "
            "2147483648 a volume may have; use a larger chunk size (up to 4M)");
  EXPECT_FALSE(ValidateChunkCount(1ull << 63, 4 << 20).ok());
}

TEST(ValidateVolumeName, Rules) {
  EXPECT_TRUE(ValidateVolumeName("db").ok());
  EXPECT_TRUE(ValidateVolumeName("a.b_c-9").ok());
  EXPECT_TRUE(ValidateVolumeName(std::string(64, 'x')).ok());
  EXPECT_FALSE(ValidateVolumeName("").ok());
  EXPECT_FALSE(ValidateVolumeName(std::string(65, 'x')).ok());
  EXPECT_FALSE(ValidateVolumeName("a/b").ok());
  // A name that reads as a volume id would hide that volume wherever "name or id" is taken.
  EXPECT_EQ(ValidateVolumeName("vol-00000000000000ff").message(),
            "invalid volume name 'vol-00000000000000ff': names of the form vol-<16 hex digits> "
            "are volume ids");
  EXPECT_TRUE(ValidateVolumeName("vol-00000000000000FF").ok());   // ids are lower case
  EXPECT_TRUE(ValidateVolumeName("vol-0000000000000000f").ok());  // 17 digits
  EXPECT_TRUE(ValidateVolumeName("vol-backup").ok());
  EXPECT_FALSE(ValidateVolumeName("a b").ok());
  EXPECT_FALSE(ValidateVolumeName("..").ok());
  EXPECT_FALSE(ValidateVolumeName("vol@snap").ok());
}

TEST(Tags, ParseAssignment) {
  auto t = ParseTagAssignment("backup=nightly");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->first, "backup");
  EXPECT_EQ(t->second, "nightly");
  EXPECT_TRUE(ParseTagAssignment("empty=").ok());
  EXPECT_FALSE(ParseTagAssignment("novalue").ok());
  EXPECT_FALSE(ParseTagAssignment("=v").ok());
  EXPECT_EQ(ParseTagAssignment("blocksnap:policy=x").status().message(),
            "tag key 'blocksnap:policy' is reserved for blocksnapd");
  EXPECT_TRUE(ValidateTag("blocksnap:policy", "x", /*allow_reserved=*/true).ok());
}

TEST(FormatSize, Human) {
  EXPECT_EQ(FormatSize(512), "512 B");
  EXPECT_EQ(FormatSize(1ull << 30), "1 GiB");
  EXPECT_EQ(FormatSize(1536), "1.5 KiB");
}

}  // namespace
}  // namespace blocksnap
