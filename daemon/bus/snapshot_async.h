// SnapshotAsync: how the snapshot methods answer without blocking the sd-event loop.
//
// One instance per control plane (per BusContext), shared by every connection that serves
// the snapshot methods:
// - Long calls (DumpSnapshot, VerifySnapshot, DiffSnapshots, GetStatus) run on a worker
//   thread of their own; the work returns a completion that is posted back to the loop
//   through an eventfd (scheduler::MainQueue), where it sends the reply (the call and its
//   connection are kept alive with sd_bus_message_ref/sd_bus_ref by PendingReply).
// - Signals: SnapshotCreated/SnapshotRemoved for every snapshot created or deleted through
//   the SnapshotManager (this is its Listener), posted to the loop; SnapshotCompleted once
//   a created one is no longer pending.
// - Waiting (WaitSnapshot, and SnapshotCompleted signals) runs no thread: a timer on the
//   loop polls the records of the watched snapshots (SnapshotManager::Get, a RocksDB read)
//   every kPollUsec while any is watched, and answers or signals when one is no longer
//   pending. A waiter whose client goes away costs one record read per tick until then.
// The workers are joined when the loop exits (an sd-event exit source: at daemon shutdown,
// before main.cc tears down the SnapshotManager they use; a Dump in flight is finished
// first) and by the destructor (the last connection gone).
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include <atomic>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bus/bus_context.h"
#include "bus/bus_ptr.h"
#include "bus/policy_reply.h"
#include "scheduler/main_queue.h"
#include "snapshot/snapshot_manager.h"
#include "snapshot/snapshot_record.h"

namespace blocksnap {

// Dropping a PendingReply may drop the last reference to its connection, and with it this
// instance (DestroyConnection). So every callback that can do that holds a reference to
// the instance while it runs, and work posted to the loop refers to it weakly.
class SnapshotAsync final : public SnapshotManager::Listener,
                            public std::enable_shared_from_this<SnapshotAsync> {
 public:
  static constexpr uint64_t kPollUsec = 50'000;
  // Worker threads at once for callers' long calls (Dump, Verify, Diff, GetStatus; some are
  // open to every local user): past it such a call is refused with Busy, not given a thread.
  static constexpr size_t kMaxCallWorkers = 16;

  // The instance of ctx, created on first use on `event` (the loop of ctx's connections).
  static Result<std::shared_ptr<SnapshotAsync>> For(BusContext* ctx, sd_event* event);
  ~SnapshotAsync() override;
  SnapshotAsync(const SnapshotAsync&) = delete;
  SnapshotAsync& operator=(const SnapshotAsync&) = delete;

  // The connections signals go to.
  void AddConnection(sd_bus* bus) { connections_.insert(bus); }
  void RemoveConnection(sd_bus* bus) { connections_.erase(bus); }
  // Emits member(id s, volume s, state s) on /org/blocksnap1 to every connection.
  void Emit(const char* member, const SnapshotRecord& r);
  // ObjectManager InterfacesAdded / InterfacesRemoved for the snapshot's object.
  void EmitObject(bool added, const SnapshotRecord& r);
  // SnapshotManager::Listener, from any thread: every snapshot created (SnapshotCreated,
  // then SnapshotCompleted when it ends) or deleted (SnapshotRemoved), whether by a D-Bus
  // client or by the policy scheduler, is signalled from the loop.
  void SnapshotCreated(const SnapshotRecord& record) noexcept override;
  void SnapshotRemoved(const SnapshotRecord& record) noexcept override;

  // Runs work on a worker thread; the function it returns runs on the loop. If work throws,
  // failed (when set) runs on the loop instead, with an Internal status naming the exception:
  // that is where a deferred call gets its error reply.
  void Run(std::function<std::function<void()>()> work,
           std::function<void(const Status&)> failed = nullptr);
  // Worker threads still running (joins the finished ones first). Loop only.
  size_t RunningWorkers();
  // Watches a snapshot until it is no longer pending: emits SnapshotCompleted then and, when
  // waiter is set, replies to it with the final record (a{sv}).
  void Watch(const std::string& id, std::shared_ptr<PendingReply> waiter);

  SnapshotAsync(BusContext* ctx, sd_event* event, std::unique_ptr<scheduler::MainQueue> queue)
      : ctx_(ctx), event_(event), queue_(std::move(queue)) {}

 private:
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  struct Watched {
    bool signal = false;  // emit SnapshotCompleted when it ends
    std::vector<std::shared_ptr<PendingReply>> waiters;
  };
  void Reap();
  void ArmTimer();
  void Poll();
  static int OnTimer(sd_event_source* s, uint64_t usec, void* userdata) noexcept;
  static int OnExit(sd_event_source* s, void* userdata) noexcept;
  void JoinAll();

  BusContext* ctx_;
  sd_event* event_;
  std::unique_ptr<scheduler::MainQueue> queue_;
  std::list<Worker> workers_;
  std::map<std::string, Watched> watched_;
  EventSourcePtr timer_;
  EventSourcePtr exit_source_;
  bool exiting_ = false;  // the loop is exiting: no new work
  std::set<sd_bus*> connections_;
};

// What a long control-plane call runs on the loop once its work is done: signals, then the
// reply to `call`.
using Answer = std::function<void(PendingReply& call)>;

// Runs `work` on a worker of the control plane's SnapshotAsync, so that the sd-event loop
// (D-Bus, the watchdog) is not held by it, and answers call m from the loop: with what `work`
// returns, or with its error. For calls whose work may take long on big volumes (restore's
// block map copy, the GC of a delete). Returns the handler's result.
int AnswerLater(sd_bus_message* m, BusContext* ctx, std::function<Result<Answer>()> work);

}  // namespace blocksnap
