// TaskThreads: a few threads running posted tasks from one FIFO queue. The store pool of the
// io loops (blocking RocksDB reads and chunk fills) and the scheduler's worker (one thread,
// so rounds never overlap) are both this; they differ only in thread count and in what
// happens to queued tasks at destruction.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace blocksnap {

class TaskThreads {
 public:
  enum class AtStop {
    kDrain,  // queued tasks still run (they complete requests someone waits for)
    kDrop,   // the running task finishes, queued ones are dropped, later posts ignored
  };
  // `what` names the tasks in the log line of one that throws (it is then skipped).
  TaskThreads(unsigned threads, AtStop at_stop, std::string what);
  ~TaskThreads();
  TaskThreads(const TaskThreads&) = delete;
  TaskThreads& operator=(const TaskThreads&) = delete;

  void Post(std::function<void()> task);
  // Blocks until no task is queued or running (tasks posted meanwhile included).
  void WaitIdle();

 private:
  void Run();

  const AtStop at_stop_;
  const std::string what_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable idle_cv_;
  std::deque<std::function<void()>> queue_;
  unsigned running_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace blocksnap
