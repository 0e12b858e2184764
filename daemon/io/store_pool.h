// StorePool: a few threads that run blocking store calls (RocksDB reads, chunk fills) for the
// io loops, so a loop never waits for the store. A task posts its result back to its loop
// with EventLoop::Post. Destruction runs every queued task, then joins: queued tasks
// complete NBD requests, which the connections wait for.
#pragma once

#include "util/task_threads.h"

namespace blocksnap::io {

class StorePool : public TaskThreads {
 public:
  explicit StorePool(unsigned threads) : TaskThreads(threads, AtStop::kDrain, "store pool") {}
};

}  // namespace blocksnap::io
