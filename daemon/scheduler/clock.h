// The scheduler's clock: the system's real-time clock, or (blocksnapd --test-clock, tests
// only) a clock that stands still until SetTime moves it.
#pragma once

#include <atomic>
#include <memory>

#include "policy/time_types.h"

namespace blocksnap::scheduler {

class Clock {
 public:
  virtual ~Clock() = default;
  // Now, in whole seconds (UTC). Thread-safe.
  virtual policy::TimePoint Now() const = 0;
  // True for the settable test clock (no timers are armed then; tests move time).
  virtual bool settable() const { return false; }
  // Moves a settable clock; ignored by the real one.
  virtual void Set(policy::TimePoint) {}
};

// CLOCK_REALTIME truncated to seconds.
std::unique_ptr<Clock> MakeSystemClock();
// Starts at `start` and moves only with Set().
std::unique_ptr<Clock> MakeTestClock(policy::TimePoint start);

}  // namespace blocksnap::scheduler
