// EventLoop: one thread, one io_uring. Owns nothing NBD-specific: the server hangs its
// connections on it and reaches it from other threads only through Post().
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "io/ring.h"
#include "util/status.h"
#include "util/unique_fd.h"

namespace blocksnap::io {

// Work to run once after the current batch of completions (e.g. sending every reply that
// completed in the batch with one sendmsg instead of one each).
class Deferred {
 public:
  virtual void RunDeferred() noexcept = 0;

 protected:
  ~Deferred() = default;

 private:
  friend class EventLoop;
  bool deferred_queued_ = false;
};

class EventLoop {
 public:
  struct Hooks {
    std::function<void()> on_tick;  // about once a second (handshake timeouts)
    std::function<void()> on_stop;  // once, when Stop() reaches the loop: close everything
    std::function<bool()> idle;     // the loop exits after on_stop once idle() holds
  };

  static Result<std::unique_ptr<EventLoop>> Create(size_t index, Hooks hooks);
  // Use Create(); public only for std::make_unique.
  EventLoop(size_t index, Hooks hooks) : index_(index), hooks_(std::move(hooks)) {}
  ~EventLoop();

  void Start();
  // Runs task on the loop thread (thread-safe; tasks run in order).
  void Post(std::function<void()> task);
  // Asks the loop to stop (on_stop, then exit once idle) and joins it.
  void StopAndJoin();

  // Loop thread only. Runs d->RunDeferred() after the current completion batch, once
  // however often it is deferred. Cancel before destroying d.
  void Defer(Deferred* d) noexcept;
  void CancelDeferred(Deferred* d) noexcept;

  Ring& ring() { return ring_; }
  size_t index() const { return index_; }
  bool stopping() const { return stopping_; }
  bool on_loop_thread() const { return std::this_thread::get_id() == thread_.get_id(); }

 private:
  void Run() noexcept;
  void ArmWake() noexcept;
  void ArmTick() noexcept;
  void RunTasks() noexcept;
  void RunDeferred() noexcept;

  struct WakeOp final : IoOp {
    EventLoop* loop;
    uint64_t value = 0;
    void OnCqe(int res) noexcept override;
  };
  struct TickOp final : IoOp {
    EventLoop* loop;
    __kernel_timespec ts{1, 0};
    void OnCqe(int res) noexcept override;
  };

  const size_t index_;
  Hooks hooks_;
  Ring ring_;
  UniqueFd wake_fd_;
  WakeOp wake_op_;
  TickOp tick_op_;
  bool wake_armed_ = false;
  bool tick_armed_ = false;
  bool stopping_ = false;
  bool exit_ = false;
  std::mutex mu_;
  std::vector<std::function<void()>> tasks_;
  std::vector<Deferred*> deferred_, deferred_running_;
  std::thread thread_;
};

}  // namespace blocksnap::io
