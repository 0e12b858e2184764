#include "wiring/snapshot_wiring.h"

#include <spdlog/spdlog.h>

namespace blocksnap {

Result<std::unique_ptr<SnapshotWiring>> SnapshotWiring::Connect(VolumeManager& volumes,
                                                                SnapshotManager& snapshots) {
  std::unique_ptr<SnapshotWiring> w(new SnapshotWiring(volumes, snapshots));
  for (const auto& record : volumes.List()) {
    BS_ASSIGN_OR_RETURN(auto volume, volumes.Find(record.IdString()));
    BS_RETURN_IF_ERROR(w->Attach(volume, /*created_now=*/false));
  }
  volumes.set_lifecycle(w.get());
  snapshots.set_write_gate(w.get());
  return w;
}

SnapshotWiring::~SnapshotWiring() {
  volumes_.set_lifecycle(nullptr);
  snapshots_.set_write_gate(nullptr);
}

Status SnapshotWiring::Attach(const std::shared_ptr<Volume>& volume, bool created_now) {
  BS_RETURN_IF_ERROR(snapshots_.AttachVolume(volume, created_now)
                         .WithContext("tracking volume '" + volume->name() + "'"));
  BS_ASSIGN_OR_RETURN(auto tracking, snapshots_.Tracking(volume->id()));
  std::lock_guard lock(mu_);
  gates_[volume->id()] = std::make_shared<WriteAdmission>(std::move(tracking));
  return Status::Ok();
}

std::shared_ptr<WriteAdmission> SnapshotWiring::Gate(uint64_t volume_id) {
  std::lock_guard lock(mu_);
  auto it = gates_.find(volume_id);
  return it == gates_.end() ? nullptr : it->second;
}

io::WriteHookProvider SnapshotWiring::WriteHookProvider() {
  return [this](const Volume& volume) -> std::shared_ptr<io::VolumeWriteHook> {
    return Gate(volume.id());
  };
}

Status SnapshotWiring::VolumeCreated(const std::shared_ptr<Volume>& volume) {
  return Attach(volume, /*created_now=*/true);
}

void SnapshotWiring::VolumeDeleted(uint64_t volume_id) {
  std::function<void(uint64_t)> observer;
  {
    std::lock_guard lock(mu_);
    gates_.erase(volume_id);
    observer = deleted_observer_;
  }
  if (observer) observer(volume_id);  // outside mu_: it joins a hydration thread
  if (Status st = snapshots_.VolumeDeleted(volume_id); !st.ok())
    spdlog::warn("releasing the snapshot state of a deleted volume: {}, ignoring", st.message());
}

void SnapshotWiring::PauseWrites(uint64_t volume_id) {
  if (auto gate = Gate(volume_id)) gate->Pause();
}

void SnapshotWiring::ResumeWrites(uint64_t volume_id) {
  if (auto gate = Gate(volume_id)) gate->Resume();
}

}  // namespace blocksnap
