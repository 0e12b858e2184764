// Hydration: a volume restored from a snapshot, filling its sparse file from the store
// (FORMAT.md "Restored volumes").
//
// `local` has one bit per chunk: set = the file holds the chunk's bytes (it was filled, or
// it never had data in the origin). A read or write of a chunk that is not local waits for
// Fill() (RestoreHook, off the io loop); the background thread fills the rest in order at
// the configured rate and reports progress. An error that is not a chunk's own (a full
// disk, EIO of the file) pauses the background fill, which tries again after 1 s, 2 s, … up
// to every 60 s, or as soon as an on-demand fill succeeds. Filled bits are durable (meta keys
// hydrate/<vol>/…, synced) before a fill returns, so a client write issued after it is never
// overwritten by a fill after a restart.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "snapshot/snapshot_manager.h"
#include "store/db.h"
#include "volume/dirty_bitmap.h"
#include "volume/volume.h"

namespace blocksnap {

// Meta keys of a volume's hydration state: "hydrate/<vol id>" = base version (decimal),
// "hydrate/<vol id>/<word:8 BE>" = 64 local bits (8 B LE).
std::string HydrateKey(uint64_t volume_id);

struct HydrationOptions {
  uint64_t rate = 0;  // bytes per second for the background fill; 0 = unlimited
  bool fast = false;  // --hydrate: at full speed whatever the rate
  // Called from the hydrator thread with (hydrated, total) now and then, and once with
  // done = true when every chunk is local.
  std::function<void(uint64_t hydrated, uint64_t total, bool done)> progress;
};

class Hydration {
 public:
  // needs: the chunks with data in the base version (not local yet unless persisted).
  Hydration(Db& db, SnapshotManager& snapshots, std::shared_ptr<Volume> volume, uint64_t base,
            HydrationOptions options);
  ~Hydration();  // Stop()

  // Marks chunk c as one to fill (construction time only, before Start).
  void Need(uint64_t c);
  // A resumed hydration: the total as first recorded (chunks rewritten since may have lost
  // their base entry, and are local). Call after the Need() calls, before LoadPersisted.
  void set_total_bytes(uint64_t total) { total_ = std::max(total, total_); }
  // Loads the durable local bits (a resumed hydration). Before Start.
  Status LoadPersisted();
  // Writes the base version key (a new hydration). Before Start.
  Status PersistBase();
  void Start();
  // Stops the thread and joins it; any thread but the hydration's own, concurrently too.
  void Stop();

  bool AllLocal(uint64_t first_chunk, uint64_t last_chunk) const {
    return local_.TestAll(first_chunk, last_chunk);
  }
  // Fills every chunk of [first, last] that is not local: 0, -ENOSPC when the fill cannot be
  // written for lack of space, or -EIO (a damaged chunk, any other failure). Blocking.
  int Fill(uint64_t first_chunk, uint64_t last_chunk) noexcept;

  uint64_t hydrated_bytes() const { return hydrated_.load(std::memory_order_relaxed); }
  uint64_t total_bytes() const { return total_; }
  uint64_t base() const { return base_; }
  const std::shared_ptr<Volume>& volume() const { return volume_; }

  // Deletes every hydrate/<vol> key (hydration complete, or the volume deleted).
  static Status DeleteState(Db& db, uint64_t volume_id);
  // Deletes the local bits only, keeping the base version: every chunk with data at the
  // base is filled again (the image was recreated empty, so what was filled is gone).
  static Status DeleteLocalBits(Db& db, uint64_t volume_id);
  // From the persisted state alone (no Hydration needed): the chunks of a volume that is
  // still hydrating whose bytes are not in its file yet (data at the base version, no local
  // bit); nullptr when the volume is not hydrating. Such a chunk was never written (a write
  // fills it first), so it still holds its block map entry's bytes whatever its file reads.
  static Result<std::unique_ptr<AtomicBitmap>> LoadNotLocal(Db& db, BlockMap& map,
                                                            uint64_t volume_id, uint64_t chunks);

 private:
  void Run();
  uint64_t ChunkBytes(uint64_t c) const;
  // Caller holds fill_mu_. Fills the listed chunks (all not local), syncs the file, persists
  // and sets their bits.
  Status FillLocked(const std::vector<uint64_t>& chunks);

  Db& db_;
  SnapshotManager& snapshots_;
  const std::shared_ptr<Volume> volume_;
  const uint64_t base_;
  const HydrationOptions options_;
  AtomicBitmap local_;
  uint64_t total_ = 0;
  std::atomic<uint64_t> hydrated_{0};

  std::mutex fill_mu_;  // one fill at a time per volume: a chunk is never filled twice
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;  // also wakes the background fill paused by an error
  bool stop_ = false;
  bool wake_ = false;                // guarded by stop_mu_: a fill succeeded during a pause
  std::atomic<bool> paused_{false};  // the background fill waits after an error
  std::mutex join_mu_;  // Stop() may be called by two threads at once (shutdown and reaping)
  std::thread thread_;
};

}  // namespace blocksnap
