// SnapshotExecutor: policy::Executor over the daemon's real SnapshotManager and
// VolumeManager. Runs on the scheduler's worker thread (CreateSnapshot blocks until the
// snapshot has completed). Also the one place that turns records into the policy library's
// VolumeInfo / SnapshotInfo, so the scheduler and `policy plan` see the world alike.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "policy/scheduler.h"
#include "snapshot/snapshot_manager.h"
#include "store/db.h"
#include "volume/volume_manager.h"

namespace blocksnap::scheduler {

// With --test-clock, the scheduler's snapshots carry this tag: the simulated instant they
// were made at, which retention and plans then use instead of the real creation time.
inline constexpr std::string_view kTestCreatedTag = "blocksnap:test-created";

// Every volume, as the policy code sees it.
std::vector<policy::VolumeInfo> VolumeInfos(const VolumeManager& volumes);

// The completed snapshots among `records`. With `test_clock`, a kTestCreatedTag overrides
// the creation time.
std::vector<policy::SnapshotInfo> SnapshotInfos(const std::vector<SnapshotRecord>& records,
                                                bool test_clock);

class SnapshotExecutor : public policy::Executor {
 public:
  // `on_saved` is called with every state that SaveState made durable.
  SnapshotExecutor(Db& db, SnapshotManager& snapshots, VolumeManager& volumes, bool test_clock,
                   std::function<void(const policy::SchedulerState&)> on_saved)
      : db_(db),
        snapshots_(snapshots),
        volumes_(volumes),
        test_clock_(test_clock),
        on_saved_(std::move(on_saved)) {}

  // Persists the state; if that fails, every later CreateSnapshot of this round fails too
  // (a slot must never be repeated after a crash).
  void SaveState(const policy::SchedulerState& state) override;
  // Creates the snapshot, waiting first for a pending one of the same volume (a manual
  // snapshot, say), then waits for it to complete.
  policy::Expected<std::string> CreateSnapshot(const policy::Action& create) override;
  std::vector<policy::SnapshotInfo> Snapshots(const std::string& volume_id) override;
  policy::Expected<bool> DeleteSnapshot(const policy::Action& del) override;
  // Logs a warning of the scheduler step (a saved slot reset after a clock change).
  void Warn(const std::string& message) override;

 private:
  Result<SnapshotRecord> CreateOnce(uint64_t volume_id, const Tags& tags);

  Db& db_;
  SnapshotManager& snapshots_;
  VolumeManager& volumes_;
  const bool test_clock_;
  std::function<void(const policy::SchedulerState&)> on_saved_;
  std::string save_error_;
};

}  // namespace blocksnap::scheduler
