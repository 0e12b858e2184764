#include "scheduler/policy_loader.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace blocksnap::scheduler {
namespace {

constexpr const char* kGood = R"(name: NAME
target:
  tags: {backup: nightly}
schedules:
  - name: s
    create: {every: 24h}
    retain: {count: 2}
)";

std::string Good(const std::string& name) {
  std::string text = kGood;
  return text.replace(text.find("NAME"), 4, name);
}

class PolicyLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("policy_loader_test_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
  }
  std::filesystem::path dir_;
};

TEST_F(PolicyLoaderTest, MissingDirectoryHasNoPoliciesAndNoErrors) {
  PolicyDirLoad load = LoadPolicyDir((dir_ / "nope").string());
  const policy::PolicySet& set = load.set;
  EXPECT_TRUE(load.listed);
  EXPECT_TRUE(set.policies.empty());
  EXPECT_TRUE(set.errors.empty());
}

// A directory that cannot be reached (here a symlink loop: ELOOP, where root would see
// through permissions) is an error, not "no policies".
TEST_F(PolicyLoaderTest, UnreachableDirectoryIsReported) {
  std::filesystem::create_directory_symlink(dir_ / "b", dir_ / "a");
  std::filesystem::create_directory_symlink(dir_ / "a", dir_ / "b");
  PolicyDirLoad load = LoadPolicyDir((dir_ / "a").string());
  const policy::PolicySet& set = load.set;
  EXPECT_FALSE(load.listed);
  EXPECT_TRUE(set.policies.empty());
  ASSERT_EQ(set.errors.size(), 1u);
  EXPECT_NE(set.errors[0].reason.find("cannot reach the policy directory"), std::string::npos)
      << set.errors[0].ToString();
}

TEST_F(PolicyLoaderTest, ReadsYamlFilesInNameOrderAndSkipsBadOnes) {
  Write("b.yaml", Good("second"));
  Write("a.yaml", Good("first"));
  Write("c.yaml", "name: broken\n");
  Write("notes.txt", "not a policy");
  std::filesystem::create_directory(dir_ / "d.yaml");  // not a regular file: ignored
  PolicyDirLoad load = LoadPolicyDir(dir_.string());
  const policy::PolicySet& set = load.set;
  EXPECT_TRUE(load.listed);
  ASSERT_EQ(set.policies.size(), 2u);
  EXPECT_EQ(set.policies[0].name, "first");
  EXPECT_EQ(set.policies[1].name, "second");
  ASSERT_FALSE(set.errors.empty());
  EXPECT_EQ(set.errors[0].where.file, (dir_ / "c.yaml").string());
}

TEST_F(PolicyLoaderTest, UnreadableAndOversizedFilesAreReported) {
  std::string big(policy::kMaxPolicyFileBytes + 1, '#');
  Write("big.yaml", big);
  policy::PolicySet set =
      LoadPolicyFiles({(dir_ / "missing.yaml").string(), (dir_ / "big.yaml").string()});
  ASSERT_EQ(set.errors.size(), 2u);
  EXPECT_EQ(set.errors[0].ToString(),
            (dir_ / "missing.yaml").string() + ":1:1: cannot read: No such file or directory");
  EXPECT_EQ(set.errors[1].ToString(),
            (dir_ / "big.yaml").string() + ":1:1: file larger than 1 MiB");
}

}  // namespace
}  // namespace blocksnap::scheduler
