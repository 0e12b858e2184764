#include "bus/snapshot_async.h"

#include <spdlog/spdlog.h>

#include <exception>
#include <optional>

#include "bus/bus_names.h"
#include "bus/snapshot_codec.h"
#include "bus/snapshot_object.h"
#include "snapshot/snapshot_manager.h"

namespace blocksnap {
namespace {

// Loop thread only: the instances by control plane. Weak, so the last connection's slot
// destroys the instance.
std::map<BusContext*, std::weak_ptr<SnapshotAsync>>& Registry() {
  static std::map<BusContext*, std::weak_ptr<SnapshotAsync>> registry;
  return registry;
}

}  // namespace

Result<std::shared_ptr<SnapshotAsync>> SnapshotAsync::For(BusContext* ctx, sd_event* event) {
  auto& registry = Registry();
  if (auto it = registry.find(ctx); it != registry.end())
    if (auto existing = it->second.lock()) return existing;
  BS_ASSIGN_OR_RETURN(auto queue, scheduler::MainQueue::Create(event));
  auto made = std::make_shared<SnapshotAsync>(ctx, event, std::move(queue));
  sd_event_source* raw = nullptr;
  if (int r = sd_event_add_exit(event, &raw, OnExit, made.get()); r < 0)
    return FromErrno(-r, "watching the loop's exit");
  made->exit_source_.reset(raw);
  if (ctx->services->snapshots) ctx->services->snapshots->AddListener(made.get());
  registry[ctx] = made;
  return made;
}

SnapshotAsync::~SnapshotAsync() {
  if (ctx_->services->snapshots) ctx_->services->snapshots->RemoveListener(this);
  timer_.reset();
  exit_source_.reset();
  JoinAll();
  auto& registry = Registry();
  if (auto it = registry.find(ctx_); it != registry.end() && it->second.expired())
    registry.erase(it);
}

void SnapshotAsync::Emit(const char* member, const SnapshotRecord& r) {
  const std::string id = r.IdString();
  for (sd_bus* bus : connections_) {
    if (!ctx_->MaySignal(bus)) continue;  // a peer still to say Hello (bus_context.h)
    int e = sd_bus_emit_signal(bus, kManagerPath, kManagerInterface, member, "sss", id.c_str(),
                               r.volume_name.c_str(), r.state.c_str());
    if (e < 0) spdlog::debug("emitting {}: {}, ignoring", member, std::strerror(-e));
  }
}

void SnapshotAsync::EmitObject(bool added, const SnapshotRecord& r) {
  const std::string path = SnapshotObjectPath(r.IdString());
  for (sd_bus* bus : connections_) {
    if (!ctx_->MaySignal(bus)) continue;
    // Removal written out, as for volumes (bus_service.cc): the object is gone already, so
    // sd-bus could not ask it which interfaces it had.
    int e = added
                ? sd_bus_emit_object_added(bus, path.c_str())
                : sd_bus_emit_signal(
                      bus, kManagerPath, "org.freedesktop.DBus.ObjectManager", "InterfacesRemoved",
                      "oas", path.c_str(), 4, kSnapshotInterface, "org.freedesktop.DBus.Peer",
                      "org.freedesktop.DBus.Introspectable", "org.freedesktop.DBus.Properties");
    if (e < 0)
      spdlog::debug("emitting Interfaces{}: {}, ignoring", added ? "Added" : "Removed",
                    std::strerror(-e));
  }
}

void SnapshotAsync::SnapshotCreated(const SnapshotRecord& record) noexcept {
  try {
    queue_->Post([weak = weak_from_this(), record] {
      auto self = weak.lock();
      if (!self || self->exiting_) return;
      self->Emit("SnapshotCreated", record);
      self->EmitObject(/*added=*/true, record);
      self->Watch(record.IdString(), nullptr);  // SnapshotCompleted when it ends
    });
  } catch (const std::exception& e) {
    spdlog::warn("signalling snapshot {}: {}", record.IdString(), e.what());
  }
}

void SnapshotAsync::SnapshotRemoved(const SnapshotRecord& record) noexcept {
  try {
    queue_->Post([weak = weak_from_this(), record] {
      auto self = weak.lock();
      if (!self || self->exiting_) return;
      self->Emit("SnapshotRemoved", record);
      self->EmitObject(/*added=*/false, record);
    });
  } catch (const std::exception& e) {
    spdlog::warn("signalling snapshot {}: {}", record.IdString(), e.what());
  }
}

void SnapshotAsync::JoinAll() {
  for (Worker& w : workers_)
    if (w.thread.joinable()) w.thread.join();
  workers_.clear();
}

int SnapshotAsync::OnExit(sd_event_source*, void* userdata) noexcept {
  auto* self = static_cast<SnapshotAsync*>(userdata);
  auto keep = self->weak_from_this().lock();  // the clear below may release the last owner
  self->exiting_ = true;
  self->timer_.reset();
  self->watched_.clear();  // unanswered waits: their callers see the connection close
  self->JoinAll();
  return 0;
}

void SnapshotAsync::Reap() {
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (it->done->load()) {
      it->thread.join();
      it = workers_.erase(it);
    } else {
      ++it;
    }
  }
}

size_t SnapshotAsync::RunningWorkers() {
  Reap();
  return workers_.size();
}

void SnapshotAsync::Run(std::function<std::function<void()>()> work,
                        std::function<void(const Status&)> failed) {
  if (exiting_) return;  // dropping work drops its reply: the daemon is stopping
  Reap();
  auto done = std::make_shared<std::atomic<bool>>(false);
  scheduler::MainQueue* queue = queue_.get();
  // The queue outlives the thread: the destructor joins before the queue goes.
  std::thread t([work = std::move(work), failed = std::move(failed), done, queue]() mutable {
    std::function<void()> complete;
    std::optional<Status> error;
    try {
      complete = work();
    } catch (const std::exception& e) {
      spdlog::error("snapshot worker failed: {}", e.what());
      error = Internal(std::string("internal error: ") + e.what());
    } catch (...) {
      spdlog::error("snapshot worker failed: unknown exception");
      error = Internal("internal error");
    }
    // What the work captured (a PendingReply, i.e. a reference to the call's connection) is
    // released on the loop, never here: freeing the last connection destroys this instance,
    // which joins this thread. The same holds for `failed`, which answers the call when the
    // work threw: its caller must not wait forever.
    queue->Post([work = std::move(work), failed = std::move(failed), complete = std::move(complete),
                 error = std::move(error)]() mutable {
      if (complete) {
        complete();
      } else if (failed) {
        failed(error.value_or(Internal("internal error: the work produced no reply")));
      }
      complete = nullptr;
      work = nullptr;
      failed = nullptr;
    });
    done->store(true);
  });
  workers_.push_back(Worker{std::move(t), done});
}

void SnapshotAsync::Watch(const std::string& id, std::shared_ptr<PendingReply> waiter) {
  if (exiting_) return;
  Watched& w = watched_[id];
  if (waiter)
    w.waiters.push_back(std::move(waiter));
  else
    w.signal = true;
  ArmTimer();
}

void SnapshotAsync::ArmTimer() {
  if (watched_.empty()) {
    if (timer_) sd_event_source_set_enabled(timer_.get(), SD_EVENT_OFF);
    return;
  }
  if (!timer_) {
    sd_event_source* raw = nullptr;
    int r = sd_event_add_time_relative(event_, &raw, CLOCK_MONOTONIC, kPollUsec, 0, OnTimer, this);
    if (r < 0) {
      spdlog::error("arming the snapshot poll timer: {}", std::strerror(-r));
      return;
    }
    timer_.reset(raw);
    sd_event_source_set_description(raw, "snapshot-poll");
    return;
  }
  uint64_t now = 0;
  sd_event_now(event_, CLOCK_MONOTONIC, &now);
  sd_event_source_set_time(timer_.get(), now + kPollUsec);
  sd_event_source_set_enabled(timer_.get(), SD_EVENT_ONESHOT);
}

int SnapshotAsync::OnTimer(sd_event_source*, uint64_t, void* userdata) noexcept {
  auto* self = static_cast<SnapshotAsync*>(userdata);
  auto keep = self->weak_from_this().lock();  // Poll may release the last owner
  try {
    self->Poll();
  } catch (const std::exception& e) {
    spdlog::error("polling snapshots: {}", e.what());
  }
  self->ArmTimer();
  return 0;
}

void SnapshotAsync::Poll() {
  SnapshotManager* snapshots = ctx_->services->snapshots;
  for (auto it = watched_.begin(); it != watched_.end();) {
    Result<SnapshotRecord> rec =
        snapshots ? snapshots->Get(it->first) : Result<SnapshotRecord>(Busy("no snapshots"));
    if (rec.ok() && rec->pending()) {
      ++it;
      continue;
    }
    // Settled in RocksDB. SnapshotManager::Wait returns once the job has also finished its
    // cleanup (so the volume takes a new snapshot at once); it blocks for that tail only, on
    // a worker.
    auto watched = std::make_shared<Watched>(std::move(it->second));
    std::string id = it->first;
    it = watched_.erase(it);
    if (!rec.ok() || !snapshots) {
      for (auto& waiter : watched->waiters) waiter->Error(rec.status());
      continue;
    }
    Run(
        [weak = weak_from_this(), snapshots, id, watched]() -> std::function<void()> {
          auto final_rec = std::make_shared<Result<SnapshotRecord>>(snapshots->Wait(id));
          return [weak, final_rec, watched] {
            auto self = weak.lock();
            if (!self) return;  // every connection is gone: nobody to answer
            if (final_rec->ok() && watched->signal) self->Emit("SnapshotCompleted", **final_rec);
            for (auto& waiter : watched->waiters) {
              if (!final_rec->ok()) {
                waiter->Error(final_rec->status());
              } else {
                waiter->Reply(
                    [&](sd_bus_message* m) { return AppendSnapshotDict(m, **final_rec); });
              }
            }
          };
        },
        [watched](const Status& st) {
          for (auto& waiter : watched->waiters) waiter->Error(st);
        });
  }
}

int AnswerLater(sd_bus_message* m, BusContext* ctx, std::function<Result<Answer>()> work) {
  sd_event* event = sd_bus_get_event(sd_bus_message_get_bus(m));
  if (event == nullptr) return -ENXIO;
  Result<std::shared_ptr<SnapshotAsync>> async = SnapshotAsync::For(ctx, event);
  if (!async.ok()) return -EIO;
  auto pending = std::make_shared<PendingReply>(m);
  (*async)->Run(
      [work = std::move(work), pending]() -> std::function<void()> {
        auto done = std::make_shared<Result<Answer>>(work());
        return [done, pending] {
          if (!done->ok()) return pending->Error(done->status());
          (**done)(*pending);
        };
      },
      [pending](const Status& st) { pending->Error(st); });
  return 1;  // answered from the loop
}

}  // namespace blocksnap
