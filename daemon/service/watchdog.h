// Watchdog: sends WATCHDOG=1 to systemd (WatchdogSec= in blocksnapd.service) from the main
// sd-event loop, but only while every registered HealthSource (the NBD server's io_uring
// loops) reports progress. A stuck main loop stops the timer; a stuck I/O loop withholds the
// ping; either way systemd sees the watchdog expire and restarts the daemon.
#pragma once

#include <systemd/sd-event.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "service/health_source.h"
#include "util/status.h"

namespace blocksnap {

class Watchdog {
  struct PrivateTag {};

 public:
  using Clock = std::chrono::steady_clock;

  // Reads WATCHDOG_USEC / WATCHDOG_PID (sd_watchdog_enabled). Returns nullptr when the service
  // manager wants no watchdog; otherwise a watchdog whose timer checks and pings on `event`
  // every half interval. The watchdog must be destroyed before `event`.
  static Result<std::unique_ptr<Watchdog>> Start(sd_event* event);

  // A watchdog without a timer, for tests: Check() is driven by hand and `ping` stands in for
  // sd_notify("WATCHDOG=1").
  Watchdog(PrivateTag, std::chrono::microseconds interval, std::function<void()> ping);
  static std::unique_ptr<Watchdog> ForTest(std::chrono::microseconds interval,
                                           std::function<void()> ping);
  ~Watchdog();

  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Adds a source, named for the log ("nbd loop 3"). Not owned: it must stay valid until
  // RemoveSource or the watchdog's destruction. Main thread only.
  void AddSource(std::string name, HealthSource* source);
  void RemoveSource(HealthSource* source);

  // One round: pings when every source is healthy at `now`, returns whether it pinged. Logs
  // (once per change) which source withheld the ping, and when all are healthy again.
  bool Check(Clock::time_point now);

  // The interval systemd expects pings within (WatchdogSec=), and how often we check.
  std::chrono::microseconds interval() const { return interval_; }
  std::chrono::microseconds period() const { return interval_ / 2; }

 private:
  struct Source {
    std::string name;
    HealthSource* source;
  };
  struct TimerUnref {
    void operator()(sd_event_source* s) const { sd_event_source_disable_unref(s); }
  };

  static int OnTimer(sd_event_source* s, uint64_t usec, void* userdata) noexcept;

  std::chrono::microseconds interval_;
  std::function<void()> ping_;
  std::vector<Source> sources_;
  std::string withheld_by_;  // name of the source that withheld the last ping, "" if none
  std::unique_ptr<sd_event_source, TimerUnref> timer_;
};

}  // namespace blocksnap
