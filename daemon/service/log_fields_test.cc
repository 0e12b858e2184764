#include "service/log_fields.h"

#include <gtest/gtest.h>

#include <thread>

namespace blocksnap {
namespace {

TEST(LogFieldsTest, ScopesNestAndPop) {
  EXPECT_TRUE(LogFields::Current().empty());
  {
    LogFields outer{{kLogVolume, "db"}};
    ASSERT_EQ(LogFields::Current().size(), 1u);
    {
      LogFields inner{{kLogSnapshot, "snap-1"}, {kLogPolicy, "nightly"}};
      ASSERT_EQ(LogFields::Current().size(), 3u);
      EXPECT_EQ(LogFields::Current()[2].name, "POLICY");
      EXPECT_EQ(LogFields::Current()[2].value, "nightly");
    }
    ASSERT_EQ(LogFields::Current().size(), 1u);
    EXPECT_EQ(LogFields::Current()[0].value, "db");
  }
  EXPECT_TRUE(LogFields::Current().empty());
}

TEST(LogFieldsTest, InvalidNamesAreDropped) {
  LogFields fields{{"lower", "x"}, {"_TRUSTED", "x"}, {"1ST", "x"}, {"", "x"}, {"OK_2", "y"}};
  ASSERT_EQ(LogFields::Current().size(), 1u);
  EXPECT_EQ(LogFields::Current()[0].name, "OK_2");
}

TEST(LogFieldsTest, PerThread) {
  LogFields fields{{kLogVolume, "db"}};
  size_t seen = 99;
  std::thread([&] { seen = LogFields::Current().size(); }).join();
  EXPECT_EQ(seen, 0u);
}

}  // namespace
}  // namespace blocksnap
