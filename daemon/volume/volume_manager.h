// VolumeManager: creates, lists, tags and deletes volumes; owns the open Volume objects.
//
// Control-plane API: every method returns Status/Result with a message for the user, and a
// failed call changes nothing (no record without its file, no file without its record).
// Thread-safe: the bus thread mutates, NBD loops look volumes up by name.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "store/db.h"
#include "volume/volume.h"

namespace blocksnap {

struct CreateVolumeRequest {
  std::string name;
  uint64_t size = 0;
  uint64_t chunk_size = kDefaultChunkSize;
  Tags tags;
  // [restore] Record fields of a restored volume (origin_snapshot, hydration, state), and
  // a step run after the lifecycle observer and before the volume is visible (served): a
  // failure undoes the create like a lifecycle failure.
  std::optional<VolumeRecord> restore;
  std::function<Status(const std::shared_ptr<Volume>&)> prepare;
  // [restore] An id the caller reserved with Db::NextId("vol") (0 = allocate one), so it can
  // prepare the volume's block map before taking the manager's lock.
  uint64_t preset_id = 0;
};

// One NBD client connection, as shown by `volume show`.
struct ClientInfo {
  std::string address;      // "127.0.0.1:53412" or "unix"
  std::string export_name;  // the export it negotiated
  SystemTime connected{};
};

// Implemented by the NBD server so the manager can ask who is attached to a volume.
class AttachedClients {
 public:
  virtual ~AttachedClients() = default;
  virtual std::vector<ClientInfo> ListClients(uint64_t volume_id) = 0;
  // Number of NBD connections currently serving the volume.
  virtual size_t CountClients(uint64_t volume_id) = 0;
  // Disconnects every client of the volume and returns once none is left.
  virtual void DisconnectClients(uint64_t volume_id) = 0;
};

// Told about volumes coming and going (the snapshot engine tracks their writes).
class VolumeLifecycle {
 public:
  virtual ~VolumeLifecycle() = default;
  // A volume was just created (all zeros). A failure undoes the create.
  virtual Status VolumeCreated(const std::shared_ptr<Volume>& volume) = 0;
  // A volume's record and image are gone.
  virtual void VolumeDeleted(uint64_t volume_id) = 0;
};

class VolumeManager {
 public:
  // Loads every volume record from db and opens its image under data_dir/volumes/.
  static Result<std::unique_ptr<VolumeManager>> Open(Db& db, const std::string& data_dir);

  Result<VolumeRecord> Create(const CreateVolumeRequest& req);
  // [restore] Applies fn to the volume's record and stores it (state, hydration progress).
  Result<VolumeRecord> Update(uint64_t id, const std::function<void(VolumeRecord&)>& fn);
  // Every volume, sorted by name.
  std::vector<VolumeRecord> List() const;
  // By name or by id ("vol-…").
  Result<VolumeRecord> Get(std::string_view name_or_id) const;
  // The open volume, for serving it. NotFound when there is none of that name or id.
  Result<std::shared_ptr<Volume>> Find(std::string_view name_or_id) const;
  // Deletes the record and the image. Busy when clients are attached, unless force, which
  // disconnects them first.
  Status Delete(std::string_view name_or_id, bool force);
  // Sets the tags in `set` and removes the keys in `unset`; returns the new record.
  Result<VolumeRecord> Tag(std::string_view name_or_id, const Tags& set,
                           const std::vector<std::string>& unset);

  void set_attached_clients(AttachedClients* a) { attached_ = a; }
  void set_lifecycle(VolumeLifecycle* l) {
    std::lock_guard lock(mu_);
    lifecycle_ = l;
  }
  const std::string& volumes_dir() const { return volumes_dir_; }

 private:
  VolumeManager(Db& db, std::string volumes_dir) : db_(db), volumes_dir_(std::move(volumes_dir)) {}
  void RemoveOrphanImages();
  std::shared_ptr<Volume> FindLocked(std::string_view name_or_id) const;
  // Create's work between reserving the name and publishing the volume (without mu_): the
  // image, the record, the lifecycle observer, req.prepare; undone on failure.
  Result<std::shared_ptr<Volume>> MakeVolume(const CreateVolumeRequest& req,
                                             VolumeLifecycle* lifecycle);
  std::string ImagePath(uint64_t id) const;

  Db& db_;
  const std::string volumes_dir_;
  AttachedClients* attached_ = nullptr;
  mutable std::mutex mu_;
  VolumeLifecycle* lifecycle_ = nullptr;  // guarded by mu_
  std::map<std::string, std::shared_ptr<Volume>, std::less<>> by_name_;
  std::set<std::string, std::less<>> creating_;  // names reserved by a Create in progress
};

}  // namespace blocksnap
