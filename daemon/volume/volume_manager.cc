#include "volume/volume_manager.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <new>

namespace blocksnap {
namespace {

Result<UniqueFd> OpenImage(const std::string& path, int extra_flags) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC | extra_flags, 0600));
  if (!fd) return FromErrno(errno, "opening " + path);
  return fd;
}

Status SyncDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return FromErrno(errno, "opening " + dir);
  if (::fsync(fd.get()) != 0) return FromErrno(errno, "syncing " + dir);
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<VolumeManager>> VolumeManager::Open(Db& db, const std::string& data_dir) {
  std::string dir = data_dir + "/volumes";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return FromErrno(ec.value(), "creating " + dir);
  std::unique_ptr<VolumeManager> m(new VolumeManager(db, dir));

  std::vector<VolumeRecord> records;
  Status decode_error;
  BS_RETURN_IF_ERROR(db.ScanPrefix(Cf::kMeta, "vol/", [&](std::string_view, std::string_view v) {
    auto r = DecodeVolumeRecord(v);
    if (!r.ok()) {
      decode_error = r.status();
      return false;
    }
    records.push_back(std::move(r).value());
    return true;
  }));
  BS_RETURN_IF_ERROR(decode_error);

  for (auto& r : records) {
    std::string path = m->ImagePath(r.id);
    auto fd = OpenImage(path, 0);
    const bool missing = !fd.ok() && fd.status().code() == Code::kNotFound;
    if (missing) {
      // The record was written but the image is gone (deleted by hand): recreate it empty
      // rather than refuse to start; the operator sees the warning.
      spdlog::warn("volume {} ({}): image {} is missing, recreating it empty", r.name, r.IdString(),
                   path);
      fd = OpenImage(path, O_CREAT);
      if (fd.ok() && ::ftruncate(fd->get(), static_cast<off_t>(r.size)) != 0)
        return FromErrno(errno, "sizing " + path);
    }
    if (!fd.ok()) return fd.status();
    auto name = r.name;
    auto volume = std::make_shared<Volume>(std::move(r), std::move(fd).value(), path);
    if (missing) volume->set_image_recreated();
    m->by_name_.emplace(name, std::move(volume));
  }
  m->RemoveOrphanImages();
  spdlog::info("loaded {} volume(s) from {}", m->by_name_.size(), db.path());
  return m;
}

void VolumeManager::RemoveOrphanImages() {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(volumes_dir_, ec)) {
    std::string file = entry.path().filename().string();
    if (!file.starts_with("vol-") || !file.ends_with(".img")) continue;
    auto id = ParseVolumeId(file.substr(0, file.size() - 4));
    if (!id.ok()) continue;
    bool known = std::any_of(by_name_.begin(), by_name_.end(),
                             [&](const auto& kv) { return kv.second->id() == *id; });
    if (known) continue;
    spdlog::warn("removing {}: an image without a volume record (interrupted create)",
                 entry.path().string());
    std::filesystem::remove(entry.path(), ec);
  }
}

std::string VolumeManager::ImagePath(uint64_t id) const {
  return volumes_dir_ + "/" + FormatVolumeId(id) + ".img";
}

std::shared_ptr<Volume> VolumeManager::FindLocked(std::string_view name_or_id) const {
  if (auto it = by_name_.find(name_or_id); it != by_name_.end()) return it->second;
  if (name_or_id.starts_with("vol-"))
    for (const auto& [name, vol] : by_name_)
      if (vol->record().IdString() == name_or_id) return vol;
  return nullptr;
}

Result<VolumeRecord> VolumeManager::Create(const CreateVolumeRequest& req) {
  BS_RETURN_IF_ERROR(ValidateVolumeName(req.name));
  BS_RETURN_IF_ERROR(ValidateVolumeSize(req.size));
  BS_RETURN_IF_ERROR(ValidateChunkSize(req.chunk_size));
  BS_RETURN_IF_ERROR(ValidateChunkCount(req.size, req.chunk_size));
  for (const auto& [k, v] : req.tags) BS_RETURN_IF_ERROR(ValidateTag(k, v));

  // The name is reserved under mu_ and the volume published under it again, but the work in
  // between runs without it: the lifecycle observer takes the snapshot engine's lock, which a
  // snapshot holds while it waits for writes in flight on the NBD loops, and those loops take
  // mu_ to look volumes up (handshakes). Holding mu_ across it could deadlock all three.
  VolumeLifecycle* lifecycle = nullptr;
  {
    std::lock_guard lock(mu_);
    if (by_name_.count(req.name) || creating_.count(req.name))
      return AlreadyExists("volume '" + req.name + "' already exists");
    creating_.insert(req.name);
    lifecycle = lifecycle_;
  }
  Result<std::shared_ptr<Volume>> made = MakeVolume(req, lifecycle);
  std::lock_guard lock(mu_);
  creating_.erase(req.name);
  if (!made.ok()) return made.status();
  const VolumeRecord r = (*made)->record();
  by_name_.emplace(r.name, std::move(*made));
  spdlog::info("created volume {} ({}, {} bytes, chunk {})", r.name, r.IdString(), r.size,
               r.chunk_size);
  return r;
}

Result<std::shared_ptr<Volume>> VolumeManager::MakeVolume(const CreateVolumeRequest& req,
                                                          VolumeLifecycle* lifecycle) {
  VolumeRecord r;
  if (req.preset_id) {  // [restore]
    r.id = req.preset_id;
  } else {
    BS_ASSIGN_OR_RETURN(r.id, db_.NextId("vol"));
  }
  r.name = req.name;
  r.size = req.size;
  r.chunk_size = req.chunk_size;
  r.tags = req.tags;
  if (req.restore) {  // [restore]
    r.state = req.restore->state;
    r.origin_snapshot = req.restore->origin_snapshot;
    r.hydrated_bytes = req.restore->hydrated_bytes;
    r.hydrate_total_bytes = req.restore->hydrate_total_bytes;
    r.fast_restore = req.restore->fast_restore;
  }
  r.created = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());

  // File first, record second: a crash in between leaves an image without a record. Ids are
  // never reused, so it cannot collide; Open() removes such orphans.
  std::string path = ImagePath(r.id);
  BS_ASSIGN_OR_RETURN(UniqueFd fd, OpenImage(path, O_CREAT | O_EXCL));
  if (::ftruncate(fd.get(), static_cast<off_t>(r.size)) != 0) {
    Status st = FromErrno(errno, "sizing " + path);
    ::unlink(path.c_str());
    return st;
  }
  // The file's name is durable before the record that names it: otherwise a crash could
  // keep the record and lose the file, and the next start would recreate it empty.
  if (Status st = SyncDir(volumes_dir_); !st.ok()) {
    ::unlink(path.c_str());
    return st;
  }
  if (Status st = db_.Put(Cf::kMeta, r.Key(), EncodeVolumeRecord(r)); !st.ok()) {
    ::unlink(path.c_str());
    return st;
  }
  auto volume = std::make_shared<Volume>(r, std::move(fd), path);
  bool created = false;  // the lifecycle observer knows the volume
  // Record first, then the observer, then the file, as Delete does: the observer collects
  // the volume's block map entries (a restore's base), which it keeps while a record says
  // the volume exists.
  auto undo = [&](Status why) {
    if (Status st = db_.Delete(Cf::kMeta, r.Key()); !st.ok())
      spdlog::warn("undoing the create of {}: {}, ignoring", r.name, st.message());
    if (created) lifecycle->VolumeDeleted(r.id);
    ::unlink(path.c_str());
    return why;
  };
  // The observer allocates the dirty bitmaps: bad_alloc must undo the create too, or the
  // record would be reattached (and fail the same way) at every start.
  try {
    if (lifecycle) {
      if (Status st = lifecycle->VolumeCreated(volume); !st.ok()) return undo(st);
      created = true;
    }
    if (req.prepare) {  // [restore]
      if (Status st = req.prepare(volume); !st.ok()) return undo(st);
    }
  } catch (const std::bad_alloc&) {
    return undo(Internal("not enough memory to track the writes of volume '" + r.name + "'"));
  }
  return volume;
}

// [restore]
Result<VolumeRecord> VolumeManager::Update(uint64_t id,
                                           const std::function<void(VolumeRecord&)>& fn) {
  std::lock_guard lock(mu_);
  std::shared_ptr<Volume> vol;
  for (const auto& [name, v] : by_name_)
    if (v->id() == id) vol = v;
  if (!vol || vol->deleted()) return NotFound("volume " + FormatVolumeId(id) + " not found");
  VolumeRecord r = vol->record();
  fn(r);
  BS_RETURN_IF_ERROR(db_.Put(Cf::kMeta, r.Key(), EncodeVolumeRecord(r)));
  vol->set_record(r);
  return r;
}

std::vector<VolumeRecord> VolumeManager::List() const {
  std::lock_guard lock(mu_);
  std::vector<VolumeRecord> out;
  out.reserve(by_name_.size());
  for (const auto& [name, vol] : by_name_) out.push_back(vol->record());
  return out;  // std::map keeps them sorted by name
}

Result<VolumeRecord> VolumeManager::Get(std::string_view name_or_id) const {
  BS_ASSIGN_OR_RETURN(auto vol, Find(name_or_id));
  return vol->record();
}

Result<std::shared_ptr<Volume>> VolumeManager::Find(std::string_view name_or_id) const {
  std::lock_guard lock(mu_);
  auto vol = FindLocked(name_or_id);
  if (!vol) return NotFound("volume '" + std::string(name_or_id) + "' not found");
  return vol;
}

Status VolumeManager::Delete(std::string_view name_or_id, bool force) {
  std::shared_ptr<Volume> vol;
  VolumeLifecycle* lifecycle = nullptr;
  {
    std::lock_guard lock(mu_);
    vol = FindLocked(name_or_id);
    if (!vol) return NotFound("volume '" + std::string(name_or_id) + "' not found");
    lifecycle = lifecycle_;
  }
  if (attached_) {
    size_t n = attached_->CountClients(vol->id());
    if (n > 0 && !force)
      return Busy("volume '" + vol->name() + "' has " + std::to_string(n) +
                  " connected client(s); disconnect them or use --force");
  }
  // Mark first so no new connection attaches, then disconnect whoever is attached now
  // (also one that finished its handshake since the count).
  vol->set_deleted(true);
  if (attached_) attached_->DisconnectClients(vol->id());
  if (Status st = db_.Delete(Cf::kMeta, vol->record().Key()); !st.ok()) {
    vol->set_deleted(false);  // still there: serve it again
    return st;
  }
  {
    std::lock_guard lock(mu_);
    auto it = by_name_.find(vol->name());
    // A concurrent Delete of the same volume got here first.
    if (it == by_name_.end() || it->second != vol) return Status::Ok();
    by_name_.erase(it);
  }
  if (::unlink(vol->path().c_str()) != 0 && errno != ENOENT)
    spdlog::warn("volume {}: removing {}: {}, ignoring", vol->name(), vol->path(),
                 std::strerror(errno));
  // Outside mu_, for the reason given in Create.
  if (lifecycle) lifecycle->VolumeDeleted(vol->id());
  spdlog::info("deleted volume {} ({})", vol->name(), vol->record().IdString());
  return Status::Ok();
}

Result<VolumeRecord> VolumeManager::Tag(std::string_view name_or_id, const Tags& set,
                                        const std::vector<std::string>& unset) {
  for (const auto& [k, v] : set) BS_RETURN_IF_ERROR(ValidateTag(k, v));
  for (const auto& k : unset) BS_RETURN_IF_ERROR(ValidateTag(k, ""));
  std::lock_guard lock(mu_);
  auto vol = FindLocked(name_or_id);
  if (!vol) return NotFound("volume '" + std::string(name_or_id) + "' not found");
  VolumeRecord r = vol->record();
  for (const auto& k : unset) r.tags.erase(k);
  for (const auto& [k, v] : set) r.tags[k] = v;
  BS_RETURN_IF_ERROR(db_.Put(Cf::kMeta, r.Key(), EncodeVolumeRecord(r)));
  vol->set_record(r);
  return r;
}

}  // namespace blocksnap
