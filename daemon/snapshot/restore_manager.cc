#include "snapshot/restore_manager.h"

#include <spdlog/spdlog.h>

#include <charconv>
#include <vector>

namespace blocksnap {

RestoreManager::~RestoreManager() {
  std::map<uint64_t, std::shared_ptr<Hydration>> active;
  {
    std::lock_guard lock(mu_);
    active = active_;
  }
  for (auto& [id, h] : active) h->Stop();
  // A hydration that completed meanwhile posted its Reap before its thread ended (joined
  // above or by Reap): pool_, destroyed first, runs it.
}

void RestoreManager::Reap(uint64_t volume_id) {
  std::shared_ptr<Hydration> h;
  {
    std::lock_guard lock(mu_);
    auto it = reaping_.find(volume_id);
    if (it == reaping_.end()) return;
    h = it->second;
  }
  h->Stop();  // joins its thread, which is leaving Progress (never this thread)
  {
    std::lock_guard lock(mu_);
    if (auto it = reaping_.find(volume_id); it != reaping_.end() && it->second == h)
      reaping_.erase(it);
    h.reset();  // under mu_: VolumeDeleted must not see the entry gone with h still held
  }
  reaped_cv_.notify_all();
}

void RestoreManager::VolumeDeleted(uint64_t volume_id) {
  std::shared_ptr<Hydration> h;
  {
    std::unique_lock lock(mu_);
    if (auto it = active_.find(volume_id); it != active_.end()) {
      h = std::move(it->second);
      active_.erase(it);
    }
    hooks_.erase(volume_id);  // connections of the volume hold theirs until they drain
    // Completed just before: its Reap is on the pool (and never waits for us).
    reaped_cv_.wait(lock, [&] { return !reaping_.contains(volume_id); });
  }
  if (h) {
    // Outside mu_: its progress callback takes mu_. Its thread sees the volume gone and
    // ends after at most the fill batch in progress.
    h->Stop();
    h.reset();
  }
  // Also without a hydration: the thread, stopped first, may not have dropped the state
  // itself, and a restore undone before its hydration started (a failed create) left its
  // base key.
  if (Status st = Hydration::DeleteState(db_, volume_id); !st.ok())
    spdlog::warn("volume {}: dropping the hydration state of the deleted volume: {}",
                 FormatVolumeId(volume_id), st.message());
}

std::shared_ptr<Hydration> RestoreManager::MakeHydration(const std::shared_ptr<Volume>& vol,
                                                         uint64_t base, bool fast) {
  HydrationOptions o;
  o.rate = rate_;
  o.fast = fast;
  const uint64_t id = vol->id();
  o.progress = [this, id](uint64_t hydrated, uint64_t total, bool done) {
    Progress(id, hydrated, total, done);
  };
  return std::make_shared<Hydration>(db_, snapshots_, vol, base, std::move(o));
}

void RestoreManager::Progress(uint64_t volume_id, uint64_t hydrated, uint64_t total, bool done) {
  // Record first, then the state: a crash in between resumes, finds every chunk local and
  // completes again.
  auto r = volumes_.Update(volume_id, [&](VolumeRecord& rec) {
    rec.hydrated_bytes =
        done ? rec.hydrate_total_bytes : std::min(hydrated, rec.hydrate_total_bytes);
    if (done) rec.state = "available";
    (void)total;
  });
  if (!r.ok()) {
    spdlog::debug("volume {}: hydration progress: {}", FormatVolumeId(volume_id),
                  r.status().message());
    return;
  }
  if (done) {
    if (Status st = Hydration::DeleteState(db_, volume_id); !st.ok())
      spdlog::warn("volume {}: dropping its hydration state: {}", FormatVolumeId(volume_id),
                   st.message());
    spdlog::info("volume {} is fully hydrated from {}", r->name, r->origin_snapshot);
    std::function<void(const VolumeRecord&)> notify;
    {
      std::lock_guard lock(mu_);
      hooks_.erase(volume_id);  // new connections need no restore hook
      // This runs on the hydration's own thread, which cannot join itself: the pool does,
      // then drops it (unless VolumeDeleted took it first).
      if (auto it = active_.find(volume_id); it != active_.end()) {
        reaping_[volume_id] = std::move(it->second);
        active_.erase(it);
        pool_.Post([this, volume_id] { Reap(volume_id); });
      }
      notify = on_state_changed_;
    }
    if (notify) notify(*r);  // outside mu_: the listener takes its own locks
  }
}

Result<VolumeRecord> RestoreManager::Create(const RestoreRequest& req) {
  BS_ASSIGN_OR_RETURN(SnapshotRecord snap, snapshots_.Get(req.snapshot));
  if (!snap.completed())
    return Busy("snapshot " + snap.IdString() + " is " + snap.state + ", not completed");
  const uint64_t size = req.size ? req.size : snap.size;
  if (size < snap.size)
    return InvalidArgument("a volume restored from " + snap.IdString() + " needs at least " +
                           std::to_string(snap.size) + " bytes (its size)");
  CreateVolumeRequest cr;
  cr.name = req.name;
  cr.size = size;
  cr.chunk_size = snap.chunk_size;
  cr.tags = req.tags;
  VolumeRecord proto;
  proto.state = "creating";  // until its base is complete; Resume() removes it otherwise
  proto.origin_snapshot = snap.IdString();
  proto.fast_restore = req.hydrate;
  cr.restore = proto;
  if (volumes_.Get(req.name).ok()) return AlreadyExists("volume '" + req.name + "' already exists");
  // The base entries are written before the volume exists, outside the volume manager's
  // lock (NBD loops look volumes up under it): entries of a volume id without a record are
  // collected by the GC (VolumeDeleted below on failure, startup recovery after a crash).
  BS_ASSIGN_OR_RETURN(cr.preset_id, db_.NextId("vol"));
  std::vector<uint64_t> chunks;
  auto base = snapshots_.CreateRestoreBase(snap.IdString(), cr.preset_id,
                                           [&](uint64_t c) { chunks.push_back(c); });
  auto collect = [&] {
    if (Status st = snapshots_.VolumeDeleted(cr.preset_id); !st.ok())
      spdlog::warn("undoing the restore of {}: {}", req.name, st.message());
  };
  if (!base.ok()) {
    collect();
    return base.status();
  }
  cr.prepare = [&](const std::shared_ptr<Volume>& vol) -> Status {
    auto h = MakeHydration(vol, *base, req.hydrate);
    for (uint64_t c : chunks) h->Need(c);
    VolumeRecord r = vol->record();
    r.hydrate_total_bytes = h->total_bytes();
    r.hydrated_bytes = 0;
    const bool needs = h->total_bytes() > 0;
    r.state = needs && req.hydrate ? "hydrating" : "available";
    if (needs) BS_RETURN_IF_ERROR(h->PersistBase());
    BS_RETURN_IF_ERROR(db_.Put(Cf::kMeta, r.Key(), EncodeVolumeRecord(r)));
    vol->set_record(r);
    if (needs) {
      std::lock_guard lock(mu_);
      active_[vol->id()] = h;
      hooks_[vol->id()] = nullptr;  // made on the first connection, around the inner hook
      h->Start();
    }
    return Status::Ok();
  };
  auto created = volumes_.Create(cr);
  if (!created.ok()) {
    collect();  // a failed prepare already did (VolumeDeleted via the lifecycle)
    return created.status();
  }
  VolumeRecord rec = std::move(created).value();
  spdlog::info("volume {} restored from {} ({} bytes to hydrate{})", rec.name, rec.origin_snapshot,
               rec.hydrate_total_bytes, req.hydrate ? ", fast" : "");
  return rec;
}

Status RestoreManager::Resume() {
  std::map<uint64_t, bool> exists;
  for (const VolumeRecord& rec : volumes_.List()) {
    exists[rec.id] = true;
    if (rec.origin_snapshot.empty()) continue;
    if (rec.state == "creating") {
      spdlog::warn("volume {}: its restore from {} was interrupted; deleting it", rec.name,
                   rec.origin_snapshot);
      BS_RETURN_IF_ERROR(volumes_.Delete(rec.IdString(), /*force=*/true));
      BS_RETURN_IF_ERROR(Hydration::DeleteState(db_, rec.id));
      exists.erase(rec.id);
      continue;
    }
    BS_ASSIGN_OR_RETURN(auto base_text, db_.Get(Cf::kMeta, HydrateKey(rec.id)));
    if (!base_text) {  // hydrated
      if (rec.hydrated_bytes != rec.hydrate_total_bytes || rec.state == "hydrating")
        BS_RETURN_IF_ERROR(volumes_
                               .Update(rec.id,
                                       [](VolumeRecord& r) {
                                         r.hydrated_bytes = r.hydrate_total_bytes;
                                         r.state = "available";
                                       })
                               .status());
      continue;
    }
    uint64_t base = 0;
    if (std::from_chars(base_text->data(), base_text->data() + base_text->size(), base).ec !=
        std::errc())
      return Corruption(HydrateKey(rec.id) + ": not a version number");
    BS_ASSIGN_OR_RETURN(auto vol, volumes_.Find(rec.IdString()));
    if (vol->image_recreated()) {
      // The chunks filled before are gone with the old file: every base chunk is filled again.
      spdlog::warn("volume {}: its image was recreated; hydrating it again from {}", rec.name,
                   rec.origin_snapshot);
      BS_RETURN_IF_ERROR(Hydration::DeleteLocalBits(db_, rec.id));
    }
    auto h = MakeHydration(vol, base, rec.fast_restore);
    BS_RETURN_IF_ERROR(snapshots_.block_map().ForEachEntry(
        rec.id, [&](uint64_t c, uint64_t v, const MapValue& val) {
          if (v == base && !val.zero) h->Need(c);
          return Status::Ok();
        }));
    h->set_total_bytes(rec.hydrate_total_bytes);
    BS_RETURN_IF_ERROR(h->LoadPersisted());
    spdlog::info("volume {}: resuming hydration from {} ({} of {} bytes done)", rec.name,
                 rec.origin_snapshot, h->hydrated_bytes(), h->total_bytes());
    std::lock_guard lock(mu_);
    active_[rec.id] = h;
    hooks_[rec.id] = nullptr;
    h->Start();
  }
  // Hydration state of volumes that are gone (deleted while hydrating).
  std::vector<uint64_t> stray;
  BS_RETURN_IF_ERROR(
      db_.ScanPrefix(Cf::kMeta, "hydrate/", [&](std::string_view k, std::string_view) {
        auto id = ParseVolumeId(k.substr(8, 20));
        if (id.ok() && !exists.count(*id) && (stray.empty() || stray.back() != *id))
          stray.push_back(*id);
        return true;
      }));
  for (uint64_t id : stray) BS_RETURN_IF_ERROR(Hydration::DeleteState(db_, id));
  return Status::Ok();
}

io::WriteHookProvider RestoreManager::WrapHooks(io::WriteHookProvider inner) {
  return [this, inner = std::move(inner)](const Volume& v) -> std::shared_ptr<io::VolumeWriteHook> {
    std::shared_ptr<io::VolumeWriteHook> base = inner ? inner(v) : nullptr;
    std::lock_guard lock(mu_);
    auto it = hooks_.find(v.id());
    if (it == hooks_.end()) return base;
    if (!it->second) it->second = std::make_shared<RestoreHook>(base, active_.at(v.id()), pool_);
    return it->second;
  };
}

}  // namespace blocksnap
