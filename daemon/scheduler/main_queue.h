// MainQueue: runs functions on the sd-event loop's thread, posted from any thread (an eventfd
// watched by the loop). The worker hands finished results back through it, since sd-bus
// connections may only be used on the loop's thread.
#pragma once

#include <systemd/sd-event.h>

#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "bus/bus_ptr.h"
#include "util/status.h"
#include "util/unique_fd.h"

namespace blocksnap::scheduler {

class MainQueue {
 public:
  // Watches a new eventfd on `event`; must be destroyed before `event`.
  static Result<std::unique_ptr<MainQueue>> Create(sd_event* event);
  // Drops functions not yet run.
  ~MainQueue() = default;

  // Thread-safe; `fn` runs on the loop's thread at its next iteration.
  void Post(std::function<void()> fn);

  explicit MainQueue(UniqueFd fd) : fd_(std::move(fd)) {}

 private:
  static int OnReady(sd_event_source* s, int fd, uint32_t revents, void* userdata) noexcept;

  UniqueFd fd_;
  EventSourcePtr source_;
  std::mutex mu_;
  std::vector<std::function<void()>> pending_;
};

}  // namespace blocksnap::scheduler
