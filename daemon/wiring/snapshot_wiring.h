// SnapshotWiring: connects the volume manager, the snapshot manager and the NBD server.
//
// - Volume lifecycle: a created volume is attached to the snapshot engine (dirty tracking
//   starts), a deleted one detached; at startup every existing volume is attached.
// - Write path: each volume's hook is its snapshot VolumeTracking wrapped in a
//   WriteAdmission gate, one per volume, shared by all of its connections.
// - WriteGate: the snapshot manager pauses and resumes a volume's writes through it.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "io/write_hook.h"
#include "snapshot/snapshot_manager.h"
#include "snapshot/write_gate.h"
#include "volume/volume_manager.h"
#include "wiring/write_admission.h"

namespace blocksnap {

class SnapshotWiring final : public VolumeLifecycle, public WriteGate {
 public:
  // Attaches every volume of `volumes` to `snapshots` and installs itself as the volume
  // manager's lifecycle observer and the snapshot manager's write gate.
  static Result<std::unique_ptr<SnapshotWiring>> Connect(VolumeManager& volumes,
                                                         SnapshotManager& snapshots);
  ~SnapshotWiring() override;

  // For NbdServerOptions::write_hook.
  io::WriteHookProvider WriteHookProvider();
  // [restore] Also told of every deleted volume, first (before the snapshot engine collects
  // its block map entries, which a hydration reads): RestoreManager::VolumeDeleted. nullptr
  // to stop, before the observer goes.
  void set_volume_deleted_observer(std::function<void(uint64_t volume_id)> fn) {
    std::lock_guard lock(mu_);
    deleted_observer_ = std::move(fn);
  }

  // VolumeLifecycle
  Status VolumeCreated(const std::shared_ptr<Volume>& volume) override;
  void VolumeDeleted(uint64_t volume_id) override;
  // WriteGate
  void PauseWrites(uint64_t volume_id) override;
  void ResumeWrites(uint64_t volume_id) override;

 private:
  SnapshotWiring(VolumeManager& volumes, SnapshotManager& snapshots)
      : volumes_(volumes), snapshots_(snapshots) {}
  Status Attach(const std::shared_ptr<Volume>& volume, bool created_now);
  std::shared_ptr<WriteAdmission> Gate(uint64_t volume_id);

  VolumeManager& volumes_;
  SnapshotManager& snapshots_;
  std::mutex mu_;
  std::map<uint64_t, std::shared_ptr<WriteAdmission>> gates_;
  std::function<void(uint64_t)> deleted_observer_;
};

}  // namespace blocksnap
