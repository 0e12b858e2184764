#include "util/task_threads.h"

#include <spdlog/spdlog.h>

#include <exception>

namespace blocksnap {

TaskThreads::TaskThreads(unsigned threads, AtStop at_stop, std::string what)
    : at_stop_(at_stop), what_(std::move(what)) {
  if (threads == 0) threads = 1;
  for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
}

TaskThreads::~TaskThreads() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    if (at_stop_ == AtStop::kDrop) queue_.clear();
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void TaskThreads::Post(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && at_stop_ == AtStop::kDrop) return;
    queue_.push_back(std::move(task));
  }
  cv_.notify_one();
}

void TaskThreads::Run() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing (left) to run
      task = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
    }
    try {
      task();
    } catch (const std::exception& e) {
      spdlog::error("{} task failed: {}, ignoring", what_, e.what());
    }
    task = nullptr;  // what it holds goes before anyone hears it is done
    {
      std::lock_guard lock(mu_);
      --running_;
    }
    idle_cv_.notify_all();
  }
}

void TaskThreads::WaitIdle() {
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [this] { return queue_.empty() && running_ == 0; });
}

}  // namespace blocksnap
