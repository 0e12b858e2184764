// DirtyTracker: crash-safe dirty-chunk tracking of one volume, with group commit.
//
// Crash invariant (DESIGN.md §4): a chunk becomes dirty durably (CF dirty, synced) BEFORE
// its data write is issued, so after any crash every chunk that may differ from the last
// completed snapshot is dirty once the state is loaded again.
//
// Hot path: MarkDirty() on chunks already durably dirty in this generation is one atomic
// load per 64 chunks and returns kWriteReady: no lock, no allocation. The first write to a
// clean chunk queues the chunk and the caller's WriteWaiter; a committer thread writes one
// synced WriteBatch for every chunk queued while the previous commit was in flight, then
// calls each waiter. The waiter is embedded in the I/O layer's request and the queues are
// vectors whose capacity is reused, so steady state allocates nothing per request.
#pragma once

#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "io/write_hook.h"
#include "store/db.h"
#include "util/status.h"
#include "volume/dirty_bitmap.h"

namespace blocksnap {

// The waiter of a write that must wait: the I/O layer's io::HookWaiter (daemon/io/
// write_hook.h), embedded in each in-flight request. Proceed(res) is called exactly once,
// from a helper thread (possibly before MarkDirty/BeforeWrite has returned), with 0 when the
// write may be issued or -errno when it must fail; it must not block.
using WriteWaiter = io::HookWaiter;

// MarkDirty / BeforeWrite results besides -errno.
inline constexpr int kWriteReady = io::kHookReady;        // issue the data write now
inline constexpr int kWriteDeferred = io::kHookDeferred;  // waiter->Proceed() follows once
// Proceed only: an instant is being fixed while the write waits; ask again (io/write_hook.h).
inline constexpr int kWriteRetry = io::kHookRetry;

// A queued waiter and the chunk range it waits for.
struct WaitingWrite {
  WriteWaiter* waiter;
  uint64_t first;
  uint64_t last;
  int result = 0;  // what Proceed gets, decided under the tracker's lock
};

class DirtyTracker {
 public:
  // Loads the durable state of `volume`. `fresh` says the volume was just created (all
  // zeros), so an absent state is right and is initialised empty. Otherwise an absent or
  // damaged state sets needs_rescan(), and every chunk counts as dirty until Reset().
  static Result<std::unique_ptr<DirtyTracker>> Open(Db& db, uint64_t volume, uint64_t chunk_count,
                                                    bool fresh);
  ~DirtyTracker();
  DirtyTracker(const DirtyTracker&) = delete;
  DirtyTracker& operator=(const DirtyTracker&) = delete;

  uint64_t volume() const { return volume_; }
  uint64_t chunk_count() const { return chunk_count_; }
  bool needs_rescan() const { return needs_rescan_; }
  const std::string& rescan_reason() const { return rescan_reason_; }

  // Makes chunks [first, last] durably dirty. Returns kWriteReady when they already are,
  // kWriteDeferred when `waiter` will be called once they are (or with -ENOSPC / -EIO when
  // their commit failed: the disk is full / anything else), or
  // -ECANCELED when the tracker is shutting down. noexcept: safe on an io_uring loop.
  int MarkDirty(uint64_t first, uint64_t last, WriteWaiter* waiter) noexcept {
    if (durable()->TestAll(first, last)) return kWriteReady;
    return MarkDirtySlow(first, last, waiter);
  }
  bool IsDirty(uint64_t chunk) const { return durable()->Test(chunk); }
  std::vector<uint64_t> DirtyChunks() const { return durable()->SetBits(); }

  // A snapshot's frozen generation: the chunks it must copy.
  struct Frozen {
    uint64_t generation = 0;
    std::unique_ptr<AtomicBitmap> bits;
  };
  // Memory for the next generation, allocated before writes are paused.
  struct Spare {
    std::unique_ptr<AtomicBitmap> durable, requested;
    std::vector<uint64_t> mirror;
  };
  Spare PrepareFreeze() const;
  // While on (a snapshot instant is being fixed), every write waiting for a commit, and every
  // one that would start waiting, is answered kWriteRetry at once instead: it has issued
  // nothing, so the write gate need not wait for it, and it asks again after the instant.
  void HoldWaiters(bool on) noexcept;
  // The snapshot instant: freezes the current generation and starts an empty one from
  // `spare`. Writes must be paused (no write that was told ready may still be unissued);
  // writes still waiting are answered kWriteRetry. It does not wait for a commit in flight:
  // that one lands as the frozen generation's words, and counts for nothing in the new one.
  // O(1) and in memory only (pointer swaps; the frozen words are already durable), so the
  // pause grows neither with the volume size nor with the store's fsync. `spare` is left
  // holding the previous generation's memory: freeing megabytes (munmap, TLB shootdowns) is
  // not O(1), so the caller drops it after writes resume.
  Frozen Freeze(Spare&& spare);
  // Stages, into a snapshot's completion batch, the deletion of its frozen generation (after
  // waiting for a commit of that generation still in flight).
  void StageCompleted(rocksdb::WriteBatch& b, uint64_t frozen_generation);
  // The snapshot failed: its frozen chunks become dirty in the current generation again.
  Status Unfreeze(const Frozen& frozen);
  // After a rescan: the dirty set becomes exactly `bits`, durably (all generations replaced).
  Status Reset(const AtomicBitmap& bits);
  // Deletes the durable state (the volume is deleted).
  Status DeleteDurable();
  // Returns once every queued chunk has been committed (tests, shutdown).
  void WaitIdle();
  // Group commits written so far (each one synced WriteBatch), for statistics and tests.
  uint64_t commits() const { return commits_.load(std::memory_order_relaxed); }

 private:
  DirtyTracker(Db& db, uint64_t volume, uint64_t chunk_count);
  int MarkDirtySlow(uint64_t first, uint64_t last, WriteWaiter* waiter) noexcept;
  void CommitterLoop();
  // Moves every waiter not yet released (queued, or in the commit in flight) to `out`.
  // Caller holds mu_.
  void SendBack(std::vector<WaitingWrite>& out);
  // Writes `generation`'s words for mirror_ and the header, replacing all older generations.
  // Caller holds write_mu_ (and mu_ once the committer runs).
  Status WriteConsolidated(uint64_t generation);
  AtomicBitmap* durable() const { return durable_.load(std::memory_order_acquire); }

  Db& db_;
  const uint64_t volume_;
  bool needs_rescan_ = false;
  std::string rescan_reason_;

  const uint64_t chunk_count_;
  // Durably dirty in the current generation: the hot-path test. Swapped (with the owner
  // below) only at Freeze, while writes are paused.
  std::unique_ptr<AtomicBitmap> durable_owner_;
  std::atomic<AtomicBitmap*> durable_;
  std::unique_ptr<AtomicBitmap> requested_;  // queued or committed in this generation

  std::mutex mu_;  // guards the queues and bitmaps' owners below, generation_, mirror_, stop_
  std::condition_variable work_cv_;
  std::condition_variable idle_cv_;
  std::vector<uint64_t> pending_;  // chunks queued for the next commit
  std::vector<uint64_t> spare_;    // reused buffer: the committer swaps it with pending_
  std::vector<std::pair<uint64_t, uint64_t>> staged_;  // the committer's (word, value) to write
  std::vector<WaitingWrite> waiters_;                  // released by the next commit
  std::vector<WaitingWrite> committing_waiters_;       // released by the commit in flight
  std::vector<WaitingWrite> releasing_;  // reused buffer: being called by the committer
  bool committing_ = false;
  uint64_t committing_gen_ = 0;  // the generation the commit in flight writes
  bool hold_ = false;            // HoldWaiters(true): no write waits
  int failed_errno_ = EIO;       // of the last commit that failed (RequestErrno)
  std::atomic<uint64_t> commits_{0};
  bool stop_ = false;
  uint64_t generation_ = 1;

  // Serializes durable writes of words; taken before mu_ is released by whoever staged them
  // from mirror_, so batches land in staging order. mirror_ is the value of the current
  // generation's words (guarded by mu_).
  std::mutex write_mu_;
  std::vector<uint64_t> mirror_;

  std::thread committer_;  // last: started when everything above is initialised
};

}  // namespace blocksnap
