// Worker: one thread running posted tasks in order. The scheduler's snapshot rounds run
// here, so the sd-event loop never waits for a snapshot to complete, and rounds never
// overlap (one scheduler snapshot per volume at a time).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace blocksnap::scheduler {

class Worker {
 public:
  Worker();
  // Lets the running task finish, drops the queued ones, joins the thread.
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Queues `task`; tasks run one at a time in posting order.
  void Post(std::function<void()> task);

 private:
  void Run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace blocksnap::scheduler
