#include "service/journal_sink.h"

#include <gtest/gtest.h>
#include <spdlog/logger.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <map>

#include "service/journal_native.h"
#include "service/log_fields.h"

namespace blocksnap {
namespace {

std::map<std::string, std::string> AsMap(const JournalEntry& entry) {
  std::map<std::string, std::string> m;
  for (const auto& [k, v] : entry) {
    EXPECT_EQ(m.count(k), 0u) << "duplicate field " << k;
    m[k] = v;
  }
  return m;
}

spdlog::details::log_msg Msg(spdlog::level::level_enum level, std::string_view text,
                             spdlog::source_loc loc = {}) {
  return spdlog::details::log_msg(loc, "blocksnapd", level, text);
}

TEST(JournalPriorityTest, MapsSpdlogLevelsToSyslog) {
  EXPECT_EQ(JournalPriority(spdlog::level::trace), 7);
  EXPECT_EQ(JournalPriority(spdlog::level::debug), 7);
  EXPECT_EQ(JournalPriority(spdlog::level::info), 6);
  EXPECT_EQ(JournalPriority(spdlog::level::warn), 4);
  EXPECT_EQ(JournalPriority(spdlog::level::err), 3);
  EXPECT_EQ(JournalPriority(spdlog::level::critical), 2);
}

TEST(JournalSinkTest, EntryHasMessagePriorityIdentifierAndScopedFields) {
  JournalSink sink("blocksnapd", "");
  LogFields outer{{kLogVolume, "outer"}, {kLogPolicy, "nightly"}};
  LogFields inner{{kLogVolume, "db"}, {"MESSAGE", "not this"}, {"PRIORITY", "0"}};
  auto m = AsMap(sink.MakeEntry(Msg(spdlog::level::warn, "disk almost full")));
  EXPECT_EQ(m["MESSAGE"], "disk almost full");
  EXPECT_EQ(m["PRIORITY"], "4");
  EXPECT_EQ(m["SYSLOG_IDENTIFIER"], "blocksnapd");
  EXPECT_EQ(m["VOLUME"], "db");  // the inner scope wins
  EXPECT_EQ(m["POLICY"], "nightly");
  EXPECT_FALSE(m["TID"].empty());
  EXPECT_EQ(m.count("CODE_FILE"), 0u);
}

TEST(JournalSinkTest, CodeLocationWhenKnown) {
  JournalSink sink("blocksnapd", "");
  auto m = AsMap(sink.MakeEntry(
      Msg(spdlog::level::err, "x", spdlog::source_loc{"daemon/main.cc", 42, "Run"})));
  EXPECT_EQ(m["CODE_FILE"], "daemon/main.cc");
  EXPECT_EQ(m["CODE_LINE"], "42");
  EXPECT_EQ(m["CODE_FUNC"], "Run");
}

TEST(JournalNativeTest, EncodesPlainAndBinarySafeFields) {
  std::string data = EncodeJournalEntry({{"MESSAGE", "hello"}, {"DETAIL", "a\nb"}});
  std::string expected = "MESSAGE=hello\nDETAIL\n";
  expected += std::string("\x03\0\0\0\0\0\0\0", 8);
  expected += "a\nb\n";
  EXPECT_EQ(data, expected);
}

TEST(JournalNativeTest, SinkSendsDatagramsToTheConfiguredSocket) {
  char dir_template[] = "/tmp/journal-test-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  std::string path = std::string(dir_template) + "/socket";
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);

  auto sink = std::make_shared<JournalSink>("blocksnapd", path);
  spdlog::logger logger("test", sink);
  {
    LogFields fields{{kLogSnapshot, "snap-7"}};
    logger.info("snapshot done");
  }
  char buf[4096];
  ssize_t n = recv(fd, buf, sizeof(buf), 0);
  ASSERT_GT(n, 0);
  std::string got(buf, static_cast<size_t>(n));
  EXPECT_NE(got.find("MESSAGE=snapshot done\n"), std::string::npos) << got;
  EXPECT_NE(got.find("PRIORITY=6\n"), std::string::npos) << got;
  EXPECT_NE(got.find("SNAPSHOT=snap-7\n"), std::string::npos) << got;
  close(fd);
  unlink(path.c_str());
  rmdir(dir_template);
}

TEST(StderrIsJournalTest, OnlyWhenJournalStreamNamesStderr) {
  unsetenv("JOURNAL_STREAM");
  EXPECT_FALSE(StderrIsJournal());
  struct stat st {};
  ASSERT_EQ(fstat(STDERR_FILENO, &st), 0);
  std::string mine = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  setenv("JOURNAL_STREAM", mine.c_str(), 1);
  EXPECT_TRUE(StderrIsJournal());
  std::string other = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1);
  setenv("JOURNAL_STREAM", other.c_str(), 1);
  EXPECT_FALSE(StderrIsJournal());
  setenv("JOURNAL_STREAM", "garbage", 1);
  EXPECT_FALSE(StderrIsJournal());
  unsetenv("JOURNAL_STREAM");
}

}  // namespace
}  // namespace blocksnap
