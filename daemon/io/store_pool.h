// StorePool: a few threads that run blocking store calls (RocksDB reads, chunk fills) for the
// io loops, so a loop never waits for the store. A task posts its result back to its loop
// with EventLoop::Post.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace blocksnap::io {

class StorePool {
 public:
  explicit StorePool(unsigned threads);
  // Runs every queued task, then joins: queued tasks complete NBD requests, which the
  // connections wait for.
  ~StorePool();
  StorePool(const StorePool&) = delete;
  StorePool& operator=(const StorePool&) = delete;

  void Post(std::function<void()> task);

 private:
  void Run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace blocksnap::io
