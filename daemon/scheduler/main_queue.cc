#include "scheduler/main_queue.h"

#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <exception>

namespace blocksnap::scheduler {

Result<std::unique_ptr<MainQueue>> MainQueue::Create(sd_event* event) {
  UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!fd) return FromErrno(errno, "creating the scheduler's eventfd");
  auto q = std::make_unique<MainQueue>(std::move(fd));
  sd_event_source* raw = nullptr;
  int r = sd_event_add_io(event, &raw, q->fd_.get(), EPOLLIN, OnReady, q.get());
  if (r < 0) return FromErrno(-r, "watching the scheduler's eventfd");
  q->source_.reset(raw);
  return q;
}

void MainQueue::Post(std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    pending_.push_back(std::move(fn));
  }
  uint64_t one = 1;
  ssize_t n = ::write(fd_.get(), &one, sizeof one);
  (void)n;  // EAGAIN only when the counter is saturated: the loop wakes anyway
}

int MainQueue::OnReady(sd_event_source*, int fd, uint32_t, void* userdata) noexcept {
  auto* q = static_cast<MainQueue*>(userdata);
  uint64_t count = 0;
  ssize_t n = ::read(fd, &count, sizeof count);
  (void)n;
  std::vector<std::function<void()>> run;
  {
    std::lock_guard lock(q->mu_);
    run.swap(q->pending_);
  }
  for (auto& fn : run) {
    try {
      fn();
    } catch (const std::exception& e) {
      spdlog::error("scheduler completion failed: {}, ignoring", e.what());
    } catch (...) {
      spdlog::error("scheduler completion failed, ignoring");
    }
  }
  return 0;
}

}  // namespace blocksnap::scheduler
