// Worker: one thread running posted tasks in order. The scheduler's snapshot rounds run
// here, so the sd-event loop never waits for a snapshot to complete, and rounds never
// overlap (one scheduler snapshot per volume at a time). Destruction lets the running task
// finish, drops the queued ones and joins.
#pragma once

#include "util/task_threads.h"

namespace blocksnap::scheduler {

class Worker : public TaskThreads {
 public:
  Worker() : TaskThreads(1, AtStop::kDrop, "scheduler") {}
};

}  // namespace blocksnap::scheduler
