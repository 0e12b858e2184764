#include "scheduler/snapshot_executor.h"

#include <spdlog/spdlog.h>

#include "scheduler/state_store.h"

namespace blocksnap::scheduler {

std::vector<policy::VolumeInfo> VolumeInfos(const VolumeManager& volumes) {
  std::vector<policy::VolumeInfo> out;
  for (const VolumeRecord& r : volumes.List()) out.push_back({r.IdString(), r.name, r.tags});
  return out;
}

std::vector<policy::SnapshotInfo> SnapshotInfos(const std::vector<SnapshotRecord>& records,
                                                bool test_clock) {
  std::vector<policy::SnapshotInfo> out;
  for (const SnapshotRecord& r : records) {
    if (!r.completed()) continue;
    policy::SnapshotInfo s;
    s.id = r.IdString();
    s.volume_id = FormatVolumeId(r.volume_id);
    s.created = std::chrono::floor<std::chrono::seconds>(r.created);
    s.tags = r.tags;
    s.sequence = r.id;    // Db::NextId("snap") counts up
    s.locked = r.locked;  // retention never deletes it nor counts it
    if (auto it = r.tags.find(std::string(kTestCreatedTag)); test_clock && it != r.tags.end()) {
      policy::TimePoint t;
      if (policy::ParseTimestamp(it->second, &t)) s.created = t;
    }
    out.push_back(std::move(s));
  }
  return out;
}

void SnapshotExecutor::SaveState(const policy::SchedulerState& state) {
  Status st = scheduler::SaveState(db_, state);
  if (!st.ok()) {
    save_error_ = "scheduler state could not be saved: " + st.message();
    return;
  }
  if (on_saved_) on_saved_(state);
}

Result<SnapshotRecord> SnapshotExecutor::CreateOnce(uint64_t volume_id, const Tags& tags) {
  Result<SnapshotRecord> rec = snapshots_.Create(volume_id, tags);
  if (rec.ok() || rec.status().code() != Code::kBusy) return rec;
  // Another snapshot of the volume is pending: wait for it, then try once more.
  Result<std::vector<SnapshotRecord>> list = snapshots_.List(volume_id);
  if (!list.ok()) return list.status();
  for (const SnapshotRecord& r : *list) {
    if (r.pending()) (void)snapshots_.Wait(r.IdString());
  }
  return snapshots_.Create(volume_id, tags);
}

policy::Expected<std::string> SnapshotExecutor::CreateSnapshot(const policy::Action& create) {
  if (!save_error_.empty()) return policy::MakeError(save_error_);
  Result<std::shared_ptr<Volume>> volume = volumes_.Find(create.volume_id);
  if (!volume.ok()) return policy::MakeError(volume.status().message());
  Tags tags = create.tags;
  if (test_clock_) tags[std::string(kTestCreatedTag)] = policy::FormatTimestamp(create.at);
  const uint64_t id = (*volume)->id();
  Result<SnapshotRecord> rec = CreateOnce(id, tags);
  if (!rec.ok()) return policy::MakeError(rec.status().message());
  Result<SnapshotRecord> done = snapshots_.Wait(rec->IdString());
  if (!done.ok()) return policy::MakeError(done.status().message());
  if (done->pending())  // cancelled: the daemon is stopping
    return policy::MakeError("snapshot " + done->IdString() + " interrupted: blocksnapd stopped");
  if (!done->completed()) {
    return policy::MakeError("snapshot " + done->IdString() + " failed: " + done->error);
  }
  return done->IdString();
}

std::vector<policy::SnapshotInfo> SnapshotExecutor::Snapshots(const std::string& volume_id) {
  Result<std::shared_ptr<Volume>> volume = volumes_.Find(volume_id);
  if (!volume.ok()) return {};
  Result<std::vector<SnapshotRecord>> list = snapshots_.List((*volume)->id());
  if (!list.ok()) return {};
  return SnapshotInfos(*list, test_clock_);
}

policy::Expected<bool> SnapshotExecutor::DeleteSnapshot(const policy::Action& del) {
  Status st = snapshots_.Delete(del.snapshot_id);
  if (!st.ok()) return policy::MakeError(st.message());
  return true;
}

void SnapshotExecutor::Warn(const std::string& message) {
  spdlog::warn("scheduler: {}", message);
}

}  // namespace blocksnap::scheduler
