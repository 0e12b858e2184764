#include "snapshot/snapshot_manager.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "snapshot/hydrator.h"
#include "volume/dirty_state.h"
#include "volume/volume_record.h"

namespace blocksnap {
namespace {

std::string VolumeKey(uint64_t id) {
  return "vol/" + FormatVolumeId(id);
}

// Snapshot records that could not be decoded: whose versions nobody knows.
struct Unreadable {
  std::set<uint64_t> volumes;   // of the records whose volume_id could still be read
  bool unknown_volume = false;  // a record without even that: any volume's
  std::string key;              // the first one's, for the log
  bool Covers(uint64_t volume_id) const { return unknown_volume || volumes.contains(volume_id); }
};

// The volume a damaged record names, if its JSON still says.
std::optional<uint64_t> VolumeOfDamaged(std::string_view v) {
  nlohmann::json j = nlohmann::json::parse(v, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto it = j.find("volume_id");
  if (it == j.end() || !it->is_string()) return std::nullopt;
  auto id = ParseVolumeId(it->get<std::string>());
  if (!id.ok()) return std::nullopt;
  return *id;
}

// Scans every snapshot record; undecodable ones are skipped, never fatal (the others are
// listed and served): logged, or noted in *bad when given.
Result<std::vector<SnapshotRecord>> ScanRecords(Db& db, Unreadable* bad = nullptr) {
  std::vector<SnapshotRecord> out;
  BS_RETURN_IF_ERROR(
      db.ScanPrefix(Cf::kMeta, kSnapKeyPrefix, [&](std::string_view key, std::string_view v) {
        auto r = DecodeSnapshotRecord(v);
        if (r.ok()) {
          out.push_back(std::move(r).value());
          return true;
        }
        if (!bad) {
          spdlog::error("{}: {}, ignoring", key, r.status().message());
          return true;
        }
        if (bad->key.empty()) bad->key = std::string(key) + " (" + r.status().message() + ")";
        if (auto vol = VolumeOfDamaged(v)) {
          bad->volumes.insert(*vol);
        } else {
          bad->unknown_volume = true;
        }
        return true;
      }));
  return out;
}

uint64_t LogicalBytes(const AtomicBitmap& chunks, uint64_t chunk_size, uint64_t size) {
  uint64_t n = chunks.Count() * chunk_size;
  // The last chunk may be partial.
  uint64_t last = chunks.size() - 1;
  if (chunks.size() && chunks.Test(last)) n -= chunks.size() * chunk_size - size;
  return n;
}

}  // namespace

Result<std::unique_ptr<SnapshotManager>> SnapshotManager::Open(Db& db,
                                                               SnapshotManagerOptions options,
                                                               std::unique_ptr<ChunkStore> store) {
  if (!store) store = std::make_unique<RocksChunkStore>(db);
  std::unique_ptr<SnapshotManager> m(new SnapshotManager(db, options, std::move(store)));
  BS_RETURN_IF_ERROR(m->Recover().WithContext("recovering snapshots"));
  return m;
}

SnapshotManager::~SnapshotManager() {
  std::lock_guard lock(mu_);
  for (auto& [id, vt] : volumes_)
    if (vt->job_owner_) vt->job_owner_->Cancel();
}

void SnapshotManager::Shutdown() {
  // The trackers outlive their jobs (see Wait); both are cancelled outside mu_.
  std::vector<std::pair<std::shared_ptr<VolumeTracking>, std::shared_ptr<SnapshotJob>>> running;
  {
    std::lock_guard lock(mu_);
    stopping_.store(true);
    for (auto& [id, vt] : volumes_)
      if (vt->job_owner_) running.emplace_back(vt, vt->job_owner_);
  }
  for (auto& [vt, job] : running) job->Cancel();
}

Status SnapshotManager::Recover() {
  std::lock_guard lock(mu_);
  BS_ASSIGN_OR_RETURN(auto records, ScanRecords(db_));
  std::map<uint64_t, uint64_t> chunk_sizes;
  for (auto& r : records) {
    chunk_sizes[r.volume_id] = r.chunk_size;
    if (!r.pending()) continue;
    // Interrupted: drop the entries it committed and release their chunks, atomically with
    // the record becoming `error`. Its frozen dirty generation is folded back into the
    // volume's dirty set when the volume is attached.
    ChunkTxn txn;
    BS_ASSIGN_OR_RETURN(uint64_t n,
                        StageDropVersion(map_, *store_, txn, r.volume_id, r.version, r.chunk_size));
    r.state = std::string(kSnapError);
    r.error = "interrupted: blocksnapd stopped while the snapshot was pending";
    r.chunks = 0;
    r.added_bytes = 0;
    txn.batch().Put(db_.cf(Cf::kMeta), r.Key(), EncodeSnapshotRecord(r));
    BS_RETURN_IF_ERROR(store_->Commit(txn).status());
    spdlog::warn("snapshot {} of volume {} was pending at shutdown: now error, {} entries dropped",
                 r.IdString(), r.volume_name, n);
  }
  // Collect entries that an interrupted delete (snapshot or volume) left behind.
  BS_ASSIGN_OR_RETURN(auto vols, map_.Volumes());
  for (uint64_t vol : vols) {
    auto it = chunk_sizes.find(vol);
    BS_RETURN_IF_ERROR(Collect(vol, it == chunk_sizes.end() ? 0 : it->second).status());
  }
  return DeleteOrphanDirtyState();
}

Status SnapshotManager::DeleteOrphanDirtyState() {
  // A volume delete removes the record, then (VolumeDeleted) the dirty state: a crash in
  // between leaves state nothing reads.
  BS_ASSIGN_OR_RETURN(auto ids, db_.LeadingIds(Cf::kDirty));
  rocksdb::WriteBatch b;
  for (uint64_t vol : ids) {
    BS_ASSIGN_OR_RETURN(auto record, db_.Get(Cf::kMeta, VolumeKey(vol)));
    if (record) continue;
    spdlog::warn("removing the dirty state of {}: a volume without a record (interrupted delete)",
                 FormatVolumeId(vol));
    StageDeleteDirtyState(db_, b, vol);
  }
  return b.Count() ? db_.Write(b) : Status::Ok();
}

Result<LiveVersions> SnapshotManager::Live(uint64_t volume_id) const {
  LiveVersions live;
  Unreadable bad;
  BS_ASSIGN_OR_RETURN(auto records, ScanRecords(db_, &bad));
  if (bad.Covers(volume_id)) live.unknown = bad.key;
  for (auto& r : records) {
    if (r.volume_id != volume_id || r.state == kSnapError) continue;
    live.versions.insert(r.version);
    if (r.pending()) live.pending.insert(r.version);
  }
  BS_ASSIGN_OR_RETURN(auto vol, db_.Get(Cf::kMeta, VolumeKey(volume_id)));
  live.head = vol.has_value() || volumes_.contains(volume_id);
  return live;
}

Result<GcResult> SnapshotManager::Collect(uint64_t volume_id, uint64_t chunk_size) {
  BS_ASSIGN_OR_RETURN(LiveVersions live, Live(volume_id));
  if (!live.unknown.empty()) {
    // A damaged record's version may be one that reads entries no other version does:
    // collecting without it would release its chunks for good. Nothing is collected until
    // the record is repaired or deleted; garbage only costs space.
    if (gc_skipped_.insert(volume_id).second)
      spdlog::error(
          "volume {}: snapshot record {} cannot be read and may be this volume's; no garbage "
          "of this volume is collected until it is repaired or removed",
          FormatVolumeId(volume_id), live.unknown);
    return GcResult{};
  }
  BS_ASSIGN_OR_RETURN(GcResult r, CollectGarbage(map_, *store_, volume_id, chunk_size, live));
  if (r.dropped_entries)
    spdlog::debug("volume {}: dropped {} block map entries, freed {} chunks ({} bytes)",
                  FormatVolumeId(volume_id), r.dropped_entries, r.freed_chunks, r.freed_bytes);
  return r;
}

Status SnapshotManager::AttachVolume(std::shared_ptr<Volume> volume, bool created_now) {
  std::lock_guard lock(mu_);
  const uint64_t id = volume->id();
  if (volumes_.contains(id))
    return AlreadyExists("volume " + volume->name() + " is already attached");
  const uint64_t chunks = (volume->size() + volume->chunk_size() - 1) / volume->chunk_size();
  BS_ASSIGN_OR_RETURN(auto tracker, DirtyTracker::Open(db_, id, chunks, created_now));
  // A recreated (all-zero) image differs from its last snapshot wherever that snapshot has
  // data, whatever the dirty state says: without a rescan the next snapshot would keep the
  // old bytes of the chunks that are clean.
  if (tracker->needs_rescan() || volume->image_recreated()) {
    spdlog::warn(
        "volume {}: {}; rescanning it against its last snapshot", volume->name(),
        volume->image_recreated() ? "its image was recreated empty" : tracker->rescan_reason());
    AtomicBitmap dirty(chunks);
    BS_ASSIGN_OR_RETURN(auto not_local, Hydration::LoadNotLocal(db_, map_, id, chunks));
    BS_ASSIGN_OR_RETURN(RescanResult r, RescanVolume(map_, *volume, dirty, not_local.get()));
    BS_RETURN_IF_ERROR(tracker->Reset(dirty));
    spdlog::warn("volume {}: rescan read {} chunks with data, {} differ from the last snapshot{}",
                 volume->name(), r.chunks_read, r.dirty,
                 not_local
                     ? fmt::format(" ({} chunks not hydrated yet were left alone)", r.not_local)
                     : std::string());
  }
  auto vt = std::make_shared<VolumeTracking>(std::move(volume), std::move(tracker));
  if (tracking_disabled_) BS_RETURN_IF_ERROR(vt->tracker().DeleteDurable());
  volumes_[id] = std::move(vt);
  return Status::Ok();
}

Status SnapshotManager::DisableTracking() {
  std::lock_guard lock(mu_);
  tracking_disabled_ = true;
  for (auto& [id, vt] : volumes_) BS_RETURN_IF_ERROR(vt->tracker().DeleteDurable());
  return Status::Ok();
}

Result<std::shared_ptr<VolumeTracking>> SnapshotManager::Tracking(uint64_t volume_id) const {
  std::lock_guard lock(mu_);
  auto it = volumes_.find(volume_id);
  if (it == volumes_.end())
    return NotFound("volume " + FormatVolumeId(volume_id) + " is not attached");
  return it->second;
}

io::WriteHookProvider SnapshotManager::WriteHookProvider() {
  return [this](const Volume& v) -> std::shared_ptr<io::VolumeWriteHook> {
    auto t = Tracking(v.id());
    if (!t.ok()) return nullptr;
    return std::move(t).value();
  };
}

Status SnapshotManager::VolumeDeleted(uint64_t volume_id) {
  std::lock_guard lock(mu_);
  auto it = volumes_.find(volume_id);
  uint64_t chunk_size = 0;
  if (it != volumes_.end()) {
    auto vt = it->second;
    chunk_size = vt->volume()->chunk_size();
    if (vt->job_owner_)
      vt->job_owner_->Abort("the volume was deleted while the snapshot was pending");
    BS_RETURN_IF_ERROR(vt->tracker().DeleteDurable());
    volumes_.erase(it);
  } else {
    rocksdb::WriteBatch b;
    StageDeleteDirtyState(db_, b, volume_id);
    BS_RETURN_IF_ERROR(db_.Write(b));
  }
  return Collect(volume_id, chunk_size).status();
}

void SnapshotManager::AddListener(Listener* listener) {
  std::lock_guard lock(listeners_mu_);
  listeners_.push_back(listener);
}

void SnapshotManager::RemoveListener(Listener* listener) {
  std::lock_guard lock(listeners_mu_);
  std::erase(listeners_, listener);
}

template <typename F>
void SnapshotManager::Notify(F&& call) {
  std::lock_guard lock(listeners_mu_);
  for (Listener* l : listeners_) call(*l);
}

Result<SnapshotRecord> SnapshotManager::Create(uint64_t volume_id, const Tags& tags) {
  Result<SnapshotRecord> rec = CreateLocked(volume_id, tags);
  if (rec.ok()) Notify([&](Listener& l) { l.SnapshotCreated(*rec); });
  return rec;
}

Status SnapshotManager::Delete(std::string_view id) {
  Result<SnapshotRecord> gone = DeleteLocked(id);
  if (gone.ok()) Notify([&](Listener& l) { l.SnapshotRemoved(*gone); });
  return gone.status();
}

Result<SnapshotRecord> SnapshotManager::CreateLocked(uint64_t volume_id, const Tags& tags) {
  if (tracking_disabled_)
    return Busy("dirty tracking is switched off (--debug-no-tracking): snapshots are refused");
  std::lock_guard lock(mu_);
  if (stopping_.load()) return Busy("blocksnapd is stopping: no new snapshots");
  for (auto& [k, v] : tags) BS_RETURN_IF_ERROR(ValidateTag(k, v, /*allow_reserved=*/true));
  auto it = volumes_.find(volume_id);
  if (it == volumes_.end())
    return NotFound("volume " + FormatVolumeId(volume_id) + " is not attached");
  VolumeTracking& vt = *it->second;
  const Volume& vol = *vt.volume();
  if (vt.job_owner_ && !vt.job_owner_->finished()) {
    SnapshotRecord p = vt.job_owner_->record();
    if (p.pending())
      return Busy("snapshot " + p.IdString() + " of volume " + vol.name() + " is still pending (" +
                  std::to_string(static_cast<int>(p.Progress() * 100)) +
                  "% copied); retry when it has completed");
    vt.job_owner_->Wait();  // completed or failed, and just finishing up
  }
  if (vt.job_owner_ && vt.job_owner_->needs_recovery())
    return Internal("snapshot " + vt.job_owner_->record().IdString() + " of volume " + vol.name() +
                    " failed and could not be cleaned up; restart blocksnapd");

  SnapshotRecord rec;
  BS_ASSIGN_OR_RETURN(rec.id, db_.NextId("snap"));
  BS_ASSIGN_OR_RETURN(rec.version, db_.NextId("version/" + FormatVolumeId(volume_id)));
  rec.volume_id = volume_id;
  rec.volume_name = vol.name();
  rec.created =
      std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  rec.tags = tags;
  rec.size = vol.size();
  rec.chunk_size = vol.chunk_size();
  // Durable before the instant: a crash from here on finds it pending and fails it.
  BS_RETURN_IF_ERROR(db_.Put(Cf::kMeta, rec.Key(), EncodeSnapshotRecord(rec)));

  DirtyTracker::Spare spare = vt.tracker().PrepareFreeze();
  std::shared_ptr<SnapshotJob> old;
  const auto t0 = std::chrono::steady_clock::now();
  if (gate_) gate_->PauseWrites(volume_id);
  // --- writes paused: O(1) work only ---
  DirtyTracker::Frozen frozen = vt.tracker().Freeze(std::move(spare));
  const AtomicBitmap* frozen_bits = frozen.bits.get();
  auto job = std::make_shared<SnapshotJob>(db_, map_, *store_, vt.volume(), vt.tracker(), rec,
                                           std::move(frozen), options_.job);
  old = std::exchange(vt.job_owner_, std::move(job));
  vt.job_.store(vt.job_owner_.get(), std::memory_order_release);
  if (gate_) gate_->ResumeWrites(volume_id);
  const auto pause = std::chrono::steady_clock::now() - t0;
  old.reset();  // the previous, finished job; joined outside the pause
  spare = {};   // the previous generation's memory, freed outside the pause too

  rec.pause_us =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(pause).count());
  rec.chunks_total = frozen_bits->Count();
  rec.bytes_total = LogicalBytes(*frozen_bits, rec.chunk_size, rec.size);
  vt.job_owner_->set_pause_us(rec.pause_us);
  vt.job_owner_->set_totals(rec.chunks_total, rec.bytes_total);
  vt.job_owner_->Start();
  return rec;
}

// A pending record with the job's live progress. The state stays the stored one: the job
// sets `completed` (or `error`) in memory while it builds the batch that stores it, and a
// reader must not see `completed` before the snapshot's entries are readable.
static SnapshotRecord Overlay(SnapshotRecord stored, SnapshotRecord live) {
  live.state = stored.state;
  live.error = stored.error;
  return live;
}

Result<SnapshotRecord> SnapshotManager::Load(std::string_view id) const {
  BS_ASSIGN_OR_RETURN(uint64_t n, ParseSnapshotId(id));
  BS_ASSIGN_OR_RETURN(auto v, db_.Get(Cf::kMeta, "snap/" + FormatSnapshotId(n)));
  if (!v) return NotFound("snapshot " + std::string(id) + " not found");
  BS_ASSIGN_OR_RETURN(SnapshotRecord r, DecodeSnapshotRecord(*v));
  if (r.pending()) {
    // Live progress from the job rather than the last committed batch.
    auto it = volumes_.find(r.volume_id);
    if (it != volumes_.end() && it->second->job_owner_) {
      SnapshotRecord live = it->second->job_owner_->record();
      if (live.id == r.id) r = Overlay(std::move(r), std::move(live));
    }
  }
  return r;
}

Result<SnapshotRecord> SnapshotManager::LoadCompleted(std::string_view id) const {
  BS_ASSIGN_OR_RETURN(SnapshotRecord r, Load(id));
  if (!r.completed())
    return Busy("snapshot " + r.IdString() + " is " + r.state + ", not completed");
  return r;
}

Result<SnapshotRecord> SnapshotManager::Get(std::string_view id) const {
  std::lock_guard lock(mu_);
  return Load(id);
}

Result<SnapshotRecord> SnapshotManager::Wait(std::string_view id) {
  std::shared_ptr<VolumeTracking> keep;  // the tracker the job uses outlives the job
  std::shared_ptr<SnapshotJob> job;
  {
    std::lock_guard lock(mu_);
    BS_ASSIGN_OR_RETURN(SnapshotRecord r, Load(id));
    auto it = volumes_.find(r.volume_id);
    if (it == volumes_.end() || !it->second->job_owner_ ||
        it->second->job_owner_->record().id != r.id)
      return r;  // no job here (if pending, recovery fails it at the next start)
    keep = it->second;
    job = keep->job_owner_;
  }
  // Until the job has finished, not just until its record left `pending`: a failing job is
  // still cleaning up after it has set `error`.
  job->Wait();
  return Get(id);
}

Result<std::vector<SnapshotRecord>> SnapshotManager::List(std::optional<uint64_t> volume_id) const {
  std::lock_guard lock(mu_);
  BS_ASSIGN_OR_RETURN(auto records, ScanRecords(db_));
  std::vector<SnapshotRecord> out;
  for (auto& r : records) {
    if (volume_id && r.volume_id != *volume_id) continue;
    if (r.pending()) {
      auto it = volumes_.find(r.volume_id);
      if (it != volumes_.end() && it->second->job_owner_ &&
          it->second->job_owner_->record().id == r.id)
        r = Overlay(std::move(r), it->second->job_owner_->record());
    }
    out.push_back(std::move(r));
  }
  std::sort(out.begin(), out.end(), [](const SnapshotRecord& a, const SnapshotRecord& b) {
    return a.created != b.created ? a.created < b.created : a.id < b.id;
  });
  return out;
}

Result<SnapshotRecord> SnapshotManager::DeleteLocked(std::string_view id) {
  std::lock_guard lock(mu_);
  BS_ASSIGN_OR_RETURN(SnapshotRecord r, Load(id));
  if (r.pending())
    return Busy("snapshot " + r.IdString() + " is pending; delete it once it has completed");
  if (r.locked)
    return Locked("snapshot " + r.IdString() + " of volume " + r.volume_name +
                  " is locked; unlock it before deleting it");
  // First the version dies (durably), then its entries that nothing else reads go. A crash
  // in between leaves only garbage that the next Open collects.
  BS_RETURN_IF_ERROR(db_.Delete(Cf::kMeta, r.Key()));
  // Readers that do not hold mu_ (exports, Dump, Verify, Diff) learn it before any entry of
  // this version is collected: a read that finds it not deleted afterwards read its own data.
  {
    std::lock_guard dl(deleted_mu_);
    deleted_.insert(r.id);
  }
  deletions_.fetch_add(1, std::memory_order_release);
  BS_RETURN_IF_ERROR(
      Collect(r.volume_id, r.chunk_size).status().WithContext("deleting " + r.IdString()));
  return r;
}

Result<SnapshotRecord> SnapshotManager::Tag(std::string_view id, const Tags& set,
                                            const std::vector<std::string>& unset) {
  std::lock_guard lock(mu_);
  for (auto& [k, v] : set) BS_RETURN_IF_ERROR(ValidateTag(k, v, /*allow_reserved=*/true));
  BS_ASSIGN_OR_RETURN(SnapshotRecord r, Load(id));
  if (r.pending())
    return Busy("snapshot " + r.IdString() + " is pending; tag it once it has completed");
  for (auto& k : unset) r.tags.erase(k);
  for (auto& [k, v] : set) r.tags[k] = v;
  BS_RETURN_IF_ERROR(db_.Put(Cf::kMeta, r.Key(), EncodeSnapshotRecord(r)));
  return r;
}

Result<SnapshotRecord> SnapshotManager::SetLocked(std::string_view id, bool locked) {
  std::lock_guard lock(mu_);  // against DeleteLocked's check
  BS_ASSIGN_OR_RETURN(SnapshotRecord r, Load(id));
  if (r.pending())
    return Busy("snapshot " + r.IdString() + " is pending; " + (locked ? "lock" : "unlock") +
                " it once it has completed");
  if (r.locked == locked) return r;
  r.locked = locked;
  BS_RETURN_IF_ERROR(db_.Put(Cf::kMeta, r.Key(), EncodeSnapshotRecord(r)));
  return r;
}

Status SnapshotManager::Dump(std::string_view id, int fd) {
  BS_ASSIGN_OR_RETURN(SnapshotRecord r, Get(id));
  if (!r.completed())
    return Busy("snapshot " + r.IdString() + " is " + r.state + ", not completed");
  // Checked after every chunk is written: a delete meanwhile may have collected entries the
  // dump read (another snapshot's bytes, or zeros), so what it wrote is not this snapshot.
  return DumpSnapshot(map_, *store_, r, fd, &stopping_, [&]() -> Status {
    if (!Deleted(r.id)) return Status::Ok();
    return NotFound("snapshot " + r.IdString() + " was deleted while it was being dumped");
  });
}

Result<VerifyReport> SnapshotManager::Verify(std::string_view id) {
  BS_ASSIGN_OR_RETURN(SnapshotRecord r, Get(id));
  if (!r.completed())
    return Busy("snapshot " + r.IdString() + " is " + r.state + ", not completed");
  Result<VerifyReport> report = VerifySnapshot(map_, *store_, r);
  // A delete meanwhile frees chunks the check then misses: not damage, and no verdict.
  if (Deleted(r.id))
    return NotFound("snapshot " + r.IdString() + " was deleted while it was being verified");
  return report;
}

Result<std::vector<uint64_t>> SnapshotManager::Diff(std::string_view from, std::string_view to) {
  BS_ASSIGN_OR_RETURN(SnapshotRecord a, Get(from));
  BS_ASSIGN_OR_RETURN(SnapshotRecord b, Get(to));
  if (!a.completed() || !b.completed()) return Busy("both snapshots of a diff must be completed");
  if (a.volume_id != b.volume_id)
    return InvalidArgument(a.IdString() + " and " + b.IdString() + " are of different volumes");
  if (a.version > b.version) std::swap(a, b);
  auto changed = ChangedChunks(map_, a.volume_id, a.version, b.version);
  for (const SnapshotRecord* r : {&a, &b})
    if (Deleted(r->id))
      return NotFound("snapshot " + r->IdString() + " was deleted during the diff");
  return changed;
}

bool SnapshotManager::Deleted(uint64_t snap_id) const {
  if (deletions_.load(std::memory_order_acquire) == 0) return false;
  std::lock_guard lock(deleted_mu_);
  return deleted_.contains(snap_id);
}

namespace {
Status GoneWhileReading(const SnapshotRecord& snap) {
  return NotFound("snapshot " + snap.IdString() + " of volume " + snap.volume_name +
                  " was deleted");
}
}  // namespace

Status SnapshotManager::ReadChunk(const SnapshotRecord& snap, uint64_t chunk, std::string* out) {
  Status st = ReadSnapshotChunk(map_, *store_, snap, chunk, out);
  // After the read (entry and chunk): if the snapshot was not deleted by now, no entry of its
  // version had been collected when the read looked it up.
  if (Deleted(snap.id)) return GoneWhileReading(snap);
  return st;
}

Status SnapshotManager::Read(const SnapshotRecord& snap, uint64_t offset, uint64_t length,
                             char* out, std::string* scratch) {
  Status st = ReadSnapshotRange(map_, *store_, snap, offset, length, out, scratch);
  if (Deleted(snap.id)) return GoneWhileReading(snap);
  return st;
}

Result<StoreStats> SnapshotManager::Stats() {
  return store_->Stats();
}

// [exports] Lock-free record reads for the NBD snapshot exports.
Result<SnapshotRecord> SnapshotManager::Peek(std::string_view id) const {
  BS_ASSIGN_OR_RETURN(uint64_t n, ParseSnapshotId(id));
  BS_ASSIGN_OR_RETURN(auto v, db_.Get(Cf::kMeta, "snap/" + FormatSnapshotId(n)));
  if (!v) return NotFound("snapshot " + std::string(id) + " not found");
  return DecodeSnapshotRecord(*v);
}

Result<std::vector<SnapshotRecord>> SnapshotManager::PeekAll() const {
  BS_ASSIGN_OR_RETURN(auto records, ScanRecords(db_));
  std::sort(records.begin(), records.end(), [](const SnapshotRecord& a, const SnapshotRecord& b) {
    return a.created != b.created ? a.created < b.created : a.id < b.id;
  });
  return records;
}

// [restore]
Result<uint64_t> SnapshotManager::CreateRestoreBase(
    std::string_view snapshot, uint64_t volume_id,
    const std::function<void(uint64_t chunk)>& on_chunk) {
  std::lock_guard lock(mu_);  // no delete/GC of the origin's entries while we copy them
  BS_ASSIGN_OR_RETURN(SnapshotRecord snap, LoadCompleted(snapshot));
  BS_ASSIGN_OR_RETURN(uint64_t base, db_.NextId("version/" + FormatVolumeId(volume_id)));
  constexpr uint64_t kBatch = 4096;
  ChunkTxn txn;
  uint64_t staged = 0;
  BS_RETURN_IF_ERROR(
      map_.ForEachAsOf(snap.volume_id, snap.version, [&](uint64_t c, const MapValue& v) -> Status {
        if (v.zero) return Status::Ok();
        map_.StagePut(txn.batch(), volume_id, c, base, v);
        // One more reference to a chunk that is stored (the
        // origin's entry holds one, under mu_): Put without
        // bytes twice and Release once = +1 with its size.
        store_->Put(txn, v.hash, {});
        store_->Put(txn, v.hash, {});
        store_->Release(txn, v.hash, snap.chunk_size);
        if (on_chunk) on_chunk(c);
        if (++staged % kBatch == 0) return store_->Commit(txn).status();
        return Status::Ok();
      }));
  if (!txn.empty()) BS_RETURN_IF_ERROR(store_->Commit(txn).status());
  return base;
}

}  // namespace blocksnap
