#include "scheduler/clock.h"

#include <chrono>

namespace blocksnap::scheduler {
namespace {

class SystemClock : public Clock {
 public:
  policy::TimePoint Now() const override {
    return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  }
};

class TestClock : public Clock {
 public:
  explicit TestClock(policy::TimePoint start) : now_(start.time_since_epoch().count()) {}
  policy::TimePoint Now() const override {
    return policy::TimePoint(std::chrono::seconds(now_.load()));
  }
  bool settable() const override { return true; }
  void Set(policy::TimePoint t) override { now_.store(t.time_since_epoch().count()); }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace

std::unique_ptr<Clock> MakeSystemClock() {
  return std::make_unique<SystemClock>();
}

std::unique_ptr<Clock> MakeTestClock(policy::TimePoint start) {
  return std::make_unique<TestClock>(start);
}

}  // namespace blocksnap::scheduler
