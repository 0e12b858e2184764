// RestoreManager: volumes created from snapshots (issue 5, FORMAT.md "Restored volumes").
//
// Create() makes the volume (VolumeManager::Create with a prepare step), gives it the
// snapshot's block map entries as its base (SnapshotManager::CreateRestoreBase: own chunk
// references, so deleting the snapshot keeps the data until the volume no longer needs it)
// and starts its Hydration. The volume is served at once through a RestoreHook that fills
// chunks on demand. Resume() restarts the hydrations a previous run left unfinished.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "io/store_pool.h"
#include "io/write_hook.h"
#include "snapshot/hydrator.h"
#include "snapshot/restore_hook.h"
#include "snapshot/snapshot_manager.h"
#include "volume/volume_manager.h"

namespace blocksnap {

struct RestoreRequest {
  std::string name;
  std::string snapshot;  // "snap-…", completed
  uint64_t size = 0;     // 0 = the snapshot's size; never smaller
  Tags tags;
  bool hydrate = false;  // fast restore: `hydrating` at full speed until complete
};

class RestoreManager {
 public:
  // rate: background hydration in bytes/s (config hydrate_rate), 0 = unlimited.
  RestoreManager(Db& db, VolumeManager& volumes, SnapshotManager& snapshots, uint64_t rate)
      : db_(db), volumes_(volumes), snapshots_(snapshots), rate_(rate) {}
  ~RestoreManager();  // stops every hydration (they resume at the next start)

  // At startup, before the NBD server serves: resumes unfinished hydrations, removes
  // volumes whose restore was interrupted before it was visible, and stray state.
  Status Resume();
  Result<VolumeRecord> Create(const RestoreRequest& req);
  // Called (from a hydrator thread) when a volume's record changes state: `hydrating` →
  // `available`. nullptr = nobody listens.
  void set_on_state_changed(std::function<void(const VolumeRecord&)> fn) {
    std::lock_guard lock(mu_);
    on_state_changed_ = std::move(fn);
  }
  // Wraps the snapshot layer's hook provider: hydrating volumes get a RestoreHook.
  io::WriteHookProvider WrapHooks(io::WriteHookProvider inner);
  // The volume's record and image are gone (the volume lifecycle, via SnapshotWiring, before
  // the snapshot engine collects its entries): stops and joins its hydration, forgets it and
  // its hook, and deletes its hydration state. The Volume (its image's fd, and so the disk
  // space of the deleted file) is then held only by connections still draining. Blocks for
  // at most one fill batch of the hydrator.
  void VolumeDeleted(uint64_t volume_id);

 private:
  std::shared_ptr<Hydration> MakeHydration(const std::shared_ptr<Volume>& vol, uint64_t base,
                                           bool fast);
  void Progress(uint64_t volume_id, uint64_t hydrated, uint64_t total, bool done);
  // On the pool: joins the hydration Progress() moved to reaping_ (its thread is returning),
  // then drops it.
  void Reap(uint64_t volume_id);

  Db& db_;
  VolumeManager& volumes_;
  SnapshotManager& snapshots_;
  const uint64_t rate_;
  std::mutex mu_;
  // Hydrations not complete: running, or paused by an error (Hydration retries it).
  // Erased when complete (to reaping_) or when the volume is deleted.
  std::map<uint64_t, std::shared_ptr<Hydration>> active_;
  std::map<uint64_t, std::shared_ptr<RestoreHook>> hooks_;  // hydrating volumes only
  // Complete hydrations whose thread is not joined yet (Reap). VolumeDeleted waits for its
  // volume's to go (reaped_cv_), so that it returns with nothing here holding the Volume.
  std::map<uint64_t, std::shared_ptr<Hydration>> reaping_;
  std::condition_variable reaped_cv_;
  std::function<void(const VolumeRecord&)> on_state_changed_;
  // Declared last, so destroyed first: its queued tasks (fills, Reap) still find the
  // members above.
  io::StorePool pool_{2};  // on-demand fills for reads and writes; reaping
};

}  // namespace blocksnap
