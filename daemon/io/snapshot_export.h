// Snapshot exports: every completed snapshot is a read-only NBD export named
// "<volume>@<snapshot id>" (docs/NBD.md, "Snapshot exports").
//
// SnapshotExports is the catalog part shared by every io loop: it lists and opens them, and
// owns the chunk cache and the StorePool that does the blocking store reads. A
// SnapshotExport is one connection's view of one snapshot:
//   READ          chunks from the cache inline on the loop; misses are read from the store
//                 (SnapshotManager::ReadChunk, hash-verified) on the pool, cached, and the
//                 request completed back on the loop. Zero and never-written chunks are
//                 never read: they come from the block map (allocation map, loaded once).
//   BLOCK_STATUS  base:allocation from the block map (no chunk is read); and, per older
//                 completed snapshot S of the same volume, "blocksnap:changed:S" and
//                 "qemu:dirty-bitmap:S": bit 0 = the range changed since S
//                 (SnapshotManager::Diff, block map only).
//   CACHE         reads the range's chunks into the cache.
//   writes        EPERM (the library already refuses them: READ_ONLY is advertised).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "io/chunk_cache.h"
#include "io/event_loop.h"
#include "io/store_pool.h"
#include "io/volume_bound.h"
#include "nbd/export.h"
#include "snapshot/snapshot_manager.h"

namespace blocksnap::io {

inline constexpr std::string_view kChangedContextPrefix = "blocksnap:changed:";
inline constexpr std::string_view kQemuDirtyContextPrefix = "qemu:dirty-bitmap:";

class SnapshotExports {
 public:
  SnapshotExports(SnapshotManager& snapshots, uint64_t cache_bytes, unsigned workers)
      : snapshots_(snapshots), cache_(cache_bytes), pool_(workers) {}

  // Every completed snapshot as "<volume>@<snapshot id>" with a description.
  std::vector<nbd::ExportListing> List();
  // The export of a completed snapshot, doing its completions on `loop`; nullptr when the
  // name is not "<volume>@<id>" of a completed snapshot of that volume.
  std::unique_ptr<nbd::Export> Open(std::string_view name, EventLoop& loop);

  SnapshotManager& snapshots() { return snapshots_; }
  ChunkCache& cache() { return cache_; }
  StorePool& pool() { return pool_; }

 private:
  SnapshotManager& snapshots_;
  ChunkCache cache_;
  StorePool pool_;  // declared last: joined (draining its tasks) before the cache goes
};

class SnapshotExport final : public nbd::Export, public VolumeBoundExport {
 public:
  // `older`: the ids of the completed snapshots of the same volume older than snap.
  SnapshotExport(SnapshotExports& source, SnapshotRecord snap, std::vector<std::string> older,
                 EventLoop& loop);
  ~SnapshotExport() override;

  const SnapshotRecord& snapshot() const { return snap_; }
  // Its clients count as clients of the volume (a forced volume delete disconnects them).
  uint64_t volume_id() const override { return snap_.volume_id; }

  const nbd::ExportInfo& info() const override { return info_; }
  std::vector<std::string> MetaContexts() const override { return contexts_; }
  void Read(uint64_t offset, std::span<uint8_t> buf, nbd::Completion& done) noexcept override;
  void Write(uint64_t offset, std::span<const uint8_t> data, bool fua,
             nbd::Completion& done) noexcept override;
  void Flush(nbd::Completion& done) noexcept override;
  void Trim(uint64_t offset, uint64_t length, bool fua, nbd::Completion& done) noexcept override;
  void Zero(uint64_t offset, uint64_t length, nbd::ZeroFlags flags,
            nbd::Completion& done) noexcept override;
  void Cache(uint64_t offset, uint64_t length, nbd::Completion& done) noexcept override;
  void BlockStatus(size_t context, uint64_t offset, uint64_t length, bool one,
                   std::vector<nbd::Extent>& out, nbd::Completion& done) noexcept override;

 private:
  // Pool side (blocking).
  int EnsureAllocation() noexcept;
  int EnsureChanged(size_t older_index) noexcept;
  int ReadBlocking(uint64_t offset, std::span<uint8_t> buf) noexcept;
  int CacheBlocking(uint64_t offset, uint64_t length) noexcept;
  // Loop or pool, once the maps it needs are loaded.
  bool TryReadCached(uint64_t offset, std::span<uint8_t> buf) noexcept;
  // Fills buf from offset on, chunk by chunk: zeros where a chunk has no data, else the cached
  // bytes, else miss(chunk, offset in chunk, length, out). A negative result of miss ends it.
  template <typename Miss>
  int CopyChunks(uint64_t offset, std::span<uint8_t> buf, Miss miss) noexcept;
  void Extents(size_t context, uint64_t offset, uint64_t length, bool one,
               std::vector<nbd::Extent>& out) const noexcept;
  // True once the snapshot has been deleted (its requests then fail with ESHUTDOWN). One
  // atomic load while no snapshot has been deleted since the last check; loop or pool.
  bool Gone() noexcept;
  // Runs fn() on the pool and completes `done` with its result on the loop.
  template <typename Fn>
  void OffLoop(nbd::Completion& done, Fn fn) noexcept;

  SnapshotExports& source_;
  const SnapshotRecord snap_;
  const std::vector<std::string> older_;
  EventLoop& loop_;
  nbd::ExportInfo info_;
  std::vector<std::string> contexts_;
  std::atomic<size_t> in_flight_{0};
  std::atomic<uint64_t> seen_deletions_{0};  // SnapshotManager::deletions() at the last check
  std::atomic<bool> gone_{false};

  std::mutex load_mu_;                // serializes the loads below; readers go by the atomics
  std::vector<uint8_t> data_chunks_;  // 1 = the chunk has stored data (not zero/unwritten)
  std::atomic<bool> allocation_loaded_{false};
  std::vector<std::optional<std::vector<uint64_t>>> changed_;  // per older_, ascending chunks
  std::vector<std::unique_ptr<std::atomic<bool>>> changed_loaded_;
};

}  // namespace blocksnap::io
