#include "io/event_loop.h"

#include <spdlog/spdlog.h>
#include <sys/eventfd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace blocksnap::io {

Result<std::unique_ptr<EventLoop>> EventLoop::Create(size_t index, Hooks hooks) {
  auto loop = std::make_unique<EventLoop>(index, std::move(hooks));
  BS_RETURN_IF_ERROR(loop->ring_.Init());
  int fd = ::eventfd(0, EFD_CLOEXEC);
  if (fd < 0) return FromErrno(errno, "creating eventfd");
  loop->wake_fd_.reset(fd);
  loop->wake_op_.loop = loop.get();
  loop->tick_op_.loop = loop.get();
  return loop;
}

EventLoop::~EventLoop() {
  if (thread_.joinable()) StopAndJoin();
}

void EventLoop::Start() {
  thread_ = std::thread([this] { Run(); });
}

void EventLoop::Post(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    tasks_.push_back(std::move(task));
  }
  uint64_t one = 1;
  // A full counter still wakes the reader; nothing to do on failure.
  [[maybe_unused]] auto n = ::write(wake_fd_.get(), &one, sizeof one);
}

void EventLoop::StopAndJoin() {
  if (!thread_.joinable()) return;
  Post([this] {
    if (stopping_) return;
    stopping_ = true;
    if (hooks_.on_stop) hooks_.on_stop();
  });
  thread_.join();
}

void EventLoop::ArmWake() noexcept {
  io_uring_sqe* sqe = ring_.Sqe(&wake_op_);
  if (!sqe) return;
  io_uring_prep_read(sqe, wake_fd_.get(), &wake_op_.value, sizeof wake_op_.value, 0);
  wake_armed_ = true;
}

void EventLoop::ArmTick() noexcept {
  io_uring_sqe* sqe = ring_.Sqe(&tick_op_);
  if (!sqe) return;
  io_uring_prep_timeout(sqe, &tick_op_.ts, 0, 0);
  tick_armed_ = true;
}

void EventLoop::WakeOp::OnCqe(int) noexcept {
  loop->wake_armed_ = false;
  loop->RunTasks();
}

void EventLoop::TickOp::OnCqe(int) noexcept {
  loop->tick_armed_ = false;
  if (loop->hooks_.on_tick) loop->hooks_.on_tick();
}

void EventLoop::RunTasks() noexcept {
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard lock(mu_);
    tasks.swap(tasks_);
  }
  for (auto& t : tasks) t();
}

void EventLoop::Defer(Deferred* d) noexcept {
  if (d->deferred_queued_) return;
  d->deferred_queued_ = true;
  deferred_.push_back(d);
}

void EventLoop::CancelDeferred(Deferred* d) noexcept {
  if (!d->deferred_queued_) return;
  d->deferred_queued_ = false;
  for (auto* list : {&deferred_, &deferred_running_}) {
    std::replace(list->begin(), list->end(), d, static_cast<Deferred*>(nullptr));
  }
}

void EventLoop::RunDeferred() noexcept {
  // Swap so that work deferred while running lands in the next round; both vectors keep
  // their capacity.
  while (!deferred_.empty()) {
    deferred_running_.swap(deferred_);
    for (size_t i = 0; i < deferred_running_.size(); ++i) {
      Deferred* d = deferred_running_[i];
      if (!d) continue;  // cancelled
      d->deferred_queued_ = false;
      d->RunDeferred();
    }
    deferred_running_.clear();
  }
}

void EventLoop::Run() noexcept {
  if (Status st = ring_.EnableOnThisThread(); !st.ok()) {
    // Never seen in practice; without a ring this loop cannot serve. Its heartbeat stops,
    // so the watchdog restarts the daemon.
    spdlog::critical("io loop {}: {}", index_, st.message());
    RunTasks();
    return;
  }
  while (true) {
    if (!wake_armed_) ArmWake();
    if (!tick_armed_) ArmTick();
    if (stopping_ && (!hooks_.idle || hooks_.idle())) break;
    int r = ring_.SubmitAndDispatch();
    if (r < 0) {
      spdlog::critical("io loop {}: io_uring failed: {}", index_, std::strerror(-r));
      break;
    }
    RunDeferred();
  }
  // Tasks posted after the loop ended (e.g. a late connection handoff) still run, so the
  // resources they carry are released.
  RunTasks();
}

}  // namespace blocksnap::io
