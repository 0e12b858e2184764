// VolumeTracking: the per-volume write hook of the snapshot engine — its dirty tracker and
// its current snapshot job. The I/O layer holds a shared_ptr to it per served volume and
// calls BeforeWrite() right before issuing every write, trim and write-zeroes.
#pragma once

#include <atomic>
#include <memory>

#include "io/write_hook.h"
#include "snapshot/snapshot_job.h"
#include "volume/dirty_tracker.h"
#include "volume/volume.h"

namespace blocksnap {

class VolumeTracking : public io::VolumeWriteHook {
 public:
  VolumeTracking(std::shared_ptr<Volume> volume, std::unique_ptr<DirtyTracker> tracker)
      : volume_(std::move(volume)), tracker_(std::move(tracker)) {}

  // io::VolumeWriteHook: call on the I/O loop right before issuing a write, trim or
  // write-zeroes of bytes [offset, offset + length). Returns:
  //   kWriteReady (0)    issue it now (the common case: one atomic test when the chunks are
  //                      already dirty and no pending snapshot needs their old bytes);
  //   kWriteDeferred (1) issue it when waiter.Proceed(0) is called (from another thread,
  //                      perhaps before this returns); Proceed(-errno): fail the request;
  //   -errno             fail the request.
  // Never blocks; the waiter must stay alive until Proceed is called.
  int BeforeWrite(uint64_t offset, uint64_t length, io::HookWaiter& waiter) noexcept override {
    if (length == 0) return kWriteReady;
    const uint64_t cs = volume_->chunk_size();
    return BeforeWriteChunks(offset / cs, (offset + length - 1) / cs, &waiter);
  }
  // Writes held at a snapshot instant wait only in the dirty tracker: a snapshot is taken
  // only when the previous job has finished, so no copy-before-write waiter exists then.
  void HoldForInstant(bool on) noexcept override { tracker_->HoldWaiters(on); }
  // The same for whole chunks [first_chunk, last_chunk].
  int BeforeWriteChunks(uint64_t first_chunk, uint64_t last_chunk, WriteWaiter* waiter) noexcept {
    if (SnapshotJob* job = job_.load(std::memory_order_acquire);
        job && job->NeedsCopy(first_chunk, last_chunk))
      return job->BeforeWrite(first_chunk, last_chunk, waiter);
    return tracker_->MarkDirty(first_chunk, last_chunk, waiter);
  }

  const std::shared_ptr<Volume>& volume() const { return volume_; }
  DirtyTracker& tracker() { return *tracker_; }
  // The volume's newest snapshot job (finished or not), nullptr before the first snapshot.
  SnapshotJob* current_job() const { return job_.load(std::memory_order_acquire); }

 private:
  friend class SnapshotManager;

  const std::shared_ptr<Volume> volume_;
  const std::unique_ptr<DirtyTracker> tracker_;
  // The newest job of the volume (finished or not). Replaced only while the volume's writes
  // are paused, so a BeforeWrite never sees the job it is using destroyed.
  std::shared_ptr<SnapshotJob> job_owner_;  // shared: Wait() holds it while it waits
  std::atomic<SnapshotJob*> job_{nullptr};
};

}  // namespace blocksnap
