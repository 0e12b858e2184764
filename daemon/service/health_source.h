// HealthSource: something the systemd watchdog asks "are you still making progress?" before
// it sends WATCHDOG=1 (service/watchdog.h). The NBD server's io_uring event loops implement it,
// so a stuck loop stops the pings and systemd restarts the daemon.
#pragma once

#include <atomic>
#include <chrono>

namespace blocksnap {

class HealthSource {
 public:
  virtual ~HealthSource() = default;
  // Whether the source has shown progress recently enough at `now`. Called on the main
  // (sd-event) thread while other threads run: implementations read atomics, never lock.
  virtual bool Healthy(std::chrono::steady_clock::time_point now) = 0;
};

// A ready-made HealthSource for an event loop: the loop calls Beat() on every iteration
// (including a periodic wake-up when idle, e.g. io_uring_wait_cqe_timeout); it is healthy while
// the last beat is at most max_age old. Beat() is one relaxed atomic store.
class LoopHeartbeat final : public HealthSource {
 public:
  explicit LoopHeartbeat(std::chrono::steady_clock::duration max_age) : max_age_(max_age) {
    Beat();
  }

  void Beat(std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now()) {
    last_.store(now.time_since_epoch().count(), std::memory_order_relaxed);
  }

  bool Healthy(std::chrono::steady_clock::time_point now) override {
    std::chrono::steady_clock::duration last(last_.load(std::memory_order_relaxed));
    return now.time_since_epoch() - last <= max_age_;
  }

 private:
  std::chrono::steady_clock::duration max_age_;
  std::atomic<std::chrono::steady_clock::rep> last_{0};
};

}  // namespace blocksnap
