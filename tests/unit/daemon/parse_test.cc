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

TEST(ValidateVolumeName, Rules) {
  EXPECT_TRUE(ValidateVolumeName("db").ok());
  EXPECT_TRUE(ValidateVolumeName("a.b_c-9").ok());
  EXPECT_TRUE(ValidateVolumeName(std::string(64, 'x')).ok());
  EXPECT_FALSE(ValidateVolumeName("").ok());
  EXPECT_FALSE(ValidateVolumeName(std::string(65, 'x')).ok());
  EXPECT_FALSE(ValidateVolumeName("a/b").ok());
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
