// Volume: a live, open volume. Owns the fd of its sparse image file volumes/<id>.img.
//
// Shared (std::shared_ptr) between the VolumeManager and every NBD connection serving it, so
// a connection keeps the fd valid while it drains even if the volume is being deleted.
// Immutable fields need no lock; the mutable record (tags, state) is guarded by mu_.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <mutex>
#include <string>

#include "util/status.h"
#include "util/unique_fd.h"
#include "volume/volume_record.h"

namespace blocksnap {

// The errno a client's request gets when the control-plane step it waited for failed: ENOSPC
// when the disk (or quota) is full, so that a full disk fails a write with ENOSPC as a full
// file system would; EIO for anything else. Returned negated on the I/O path.
inline int RequestErrno(const Status& st) {
  return st.code() == Code::kNoSpace ? ENOSPC : EIO;
}

class Volume {
 public:
  Volume(VolumeRecord record, UniqueFd fd, std::string path)
      : id_(record.id),
        name_(record.name),
        size_(record.size),
        chunk_size_(record.chunk_size),
        path_(std::move(path)),
        fd_(std::move(fd)),
        record_(std::move(record)) {}

  uint64_t id() const { return id_; }
  const std::string& name() const { return name_; }
  uint64_t size() const { return size_; }
  uint64_t chunk_size() const { return chunk_size_; }
  const std::string& path() const { return path_; }
  // The image file, opened O_RDWR|O_CLOEXEC. Valid for the Volume's lifetime.
  int fd() const { return fd_.get(); }
  // The image was missing at start and was recreated empty (VolumeManager::Open): the
  // dirty state describes bytes that are gone. Set before the volume is shared.
  bool image_recreated() const { return image_recreated_; }
  void set_image_recreated() { image_recreated_ = true; }

  VolumeRecord record() const {
    std::lock_guard lock(mu_);
    return record_;
  }
  void set_record(VolumeRecord r) {
    std::lock_guard lock(mu_);
    record_ = std::move(r);
  }

  // Set once the volume is deleted: servers stop admitting new requests.
  bool deleted() const { return deleted_.load(std::memory_order_acquire); }
  // Set before the record is deleted, and cleared again if that fails.
  void set_deleted(bool deleted) { deleted_.store(deleted, std::memory_order_release); }

 private:
  const uint64_t id_;
  const std::string name_;
  const uint64_t size_;
  const uint64_t chunk_size_;
  const std::string path_;
  UniqueFd fd_;
  std::atomic<bool> deleted_{false};
  bool image_recreated_ = false;
  mutable std::mutex mu_;
  VolumeRecord record_;
};

}  // namespace blocksnap
