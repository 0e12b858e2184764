#include "service/watchdog.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace blocksnap {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class FakeSource : public HealthSource {
 public:
  bool healthy = true;
  bool Healthy(Clock::time_point) override { return healthy; }
};

TEST(WatchdogTest, PingsOnMainLoopLivenessAloneWithoutSources) {
  int pings = 0;
  auto dog = Watchdog::ForTest(200ms, [&] { ++pings; });
  EXPECT_EQ(dog->period(), 100ms);
  EXPECT_TRUE(dog->Check(Clock::now()));
  EXPECT_TRUE(dog->Check(Clock::now()));
  EXPECT_EQ(pings, 2);
}

TEST(WatchdogTest, AnUnhealthySourceWithholdsThePing) {
  int pings = 0;
  auto dog = Watchdog::ForTest(200ms, [&] { ++pings; });
  FakeSource loop0, loop1;
  dog->AddSource("nbd loop 0", &loop0);
  dog->AddSource("nbd loop 1", &loop1);
  EXPECT_TRUE(dog->Check(Clock::now()));
  loop1.healthy = false;
  EXPECT_FALSE(dog->Check(Clock::now()));
  EXPECT_FALSE(dog->Check(Clock::now()));
  EXPECT_EQ(pings, 1);
  loop1.healthy = true;
  EXPECT_TRUE(dog->Check(Clock::now()));
  EXPECT_EQ(pings, 2);
}

TEST(WatchdogTest, RemovedSourcesAreNotAsked) {
  int pings = 0;
  auto dog = Watchdog::ForTest(200ms, [&] { ++pings; });
  FakeSource stuck;
  stuck.healthy = false;
  dog->AddSource("stuck", &stuck);
  EXPECT_FALSE(dog->Check(Clock::now()));
  dog->RemoveSource(&stuck);
  EXPECT_TRUE(dog->Check(Clock::now()));
}

TEST(LoopHeartbeatTest, HealthyWhileTheLastBeatIsRecent) {
  LoopHeartbeat beat(5s);
  Clock::time_point t0 = Clock::now();
  beat.Beat(t0);
  EXPECT_TRUE(beat.Healthy(t0 + 5s));
  EXPECT_FALSE(beat.Healthy(t0 + 6s));
  beat.Beat(t0 + 6s);
  EXPECT_TRUE(beat.Healthy(t0 + 7s));
}

TEST(WatchdogTest, StartReturnsNullWithoutWatchdogUsec) {
  unsetenv("WATCHDOG_USEC");
  unsetenv("WATCHDOG_PID");
  sd_event* event = nullptr;
  ASSERT_GE(sd_event_new(&event), 0);
  {
    auto dog = Watchdog::Start(event);
    ASSERT_TRUE(dog.ok());
    EXPECT_EQ(dog->get(), nullptr);
  }
  {
    setenv("WATCHDOG_USEC", "200000", 1);
    setenv("WATCHDOG_PID", "1", 1);  // meant for another process
    auto dog = Watchdog::Start(event);
    ASSERT_TRUE(dog.ok());
    EXPECT_EQ(dog->get(), nullptr);
  }
  {
    setenv("WATCHDOG_PID", std::to_string(getpid()).c_str(), 1);
    auto dog = Watchdog::Start(event);
    ASSERT_TRUE(dog.ok());
    ASSERT_NE(dog->get(), nullptr);
    EXPECT_EQ((*dog)->interval(), 200ms);
  }
  unsetenv("WATCHDOG_USEC");
  unsetenv("WATCHDOG_PID");
  sd_event_unref(event);
}

}  // namespace
}  // namespace blocksnap
