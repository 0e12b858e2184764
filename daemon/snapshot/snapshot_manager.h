// SnapshotManager: online point-in-time snapshots of volumes (DESIGN.md §3-§5).
//
// Control plane (bus thread): Create, List, Get, Wait, Delete, Tag, Dump, Verify, Diff,
// Stats, and the volume lifecycle hooks AttachVolume / VolumeDeleted. Every method returns
// Status/Result with a message for the user. Data plane: VolumeTracking::BeforeWrite, via
// Tracking(volume_id), returns -errno and never blocks.
//
// A second snapshot of a volume whose previous snapshot is still pending is REFUSED (kBusy,
// "snapshot snap-… of volume … is still pending (n% copied); retry when it has completed"),
// not queued: the caller decides whether to wait (Wait) and retry, and a queued instant
// would not be the instant the user asked for.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "snapshot/gc.h"
#include "snapshot/snapshot_io.h"
#include "snapshot/snapshot_job.h"
#include "snapshot/snapshot_record.h"
#include "snapshot/volume_tracking.h"
#include "snapshot/write_gate.h"
#include "store/block_map.h"
#include "store/chunk_store.h"
#include "store/db.h"

namespace blocksnap {

struct SnapshotManagerOptions {
  SnapshotJobOptions job;
};

class SnapshotManager {
 public:
  // Recovers what a crash left (pending snapshots become `error` and release what they
  // took; unreferenced block map entries are collected) and returns the manager. `store`
  // defaults to the RocksDB tier on db.
  static Result<std::unique_ptr<SnapshotManager>> Open(Db& db, SnapshotManagerOptions options = {},
                                                       std::unique_ptr<ChunkStore> store = nullptr);
  // Stops running jobs; their snapshots stay pending and fail at the next Open.
  ~SnapshotManager();
  SnapshotManager(const SnapshotManager&) = delete;
  SnapshotManager& operator=(const SnapshotManager&) = delete;

  // The I/O layer's pause/resume; nullptr (the default) when nothing writes.
  void set_write_gate(WriteGate* gate) { gate_ = gate; }
  // Benchmarks only (blocksnapd --debug-no-tracking): writes are not tracked, so every
  // snapshot would be wrong; Create refuses with kBusy. The durable dirty state of every
  // volume, attached now or later, is deleted: it would claim to know what changed, and
  // the next start with tracking rescans instead.
  Status DisableTracking();

  // --- Volume lifecycle (called by the volume manager / main.cc) ---
  // Starts tracking an open volume. created_now: the volume was just created (all zeros).
  // Otherwise its durable dirty state is loaded; if it is missing or damaged, the volume is
  // rescanned against its newest snapshot data (logged as a warning). Call at startup after
  // Open and before serving the volume, and on every volume creation.
  Status AttachVolume(std::shared_ptr<Volume> volume, bool created_now);
  // The write hook of an attached volume (NotFound otherwise).
  Result<std::shared_ptr<VolumeTracking>> Tracking(uint64_t volume_id) const;
  // For NbdServerOptions::write_hook: the attached volume's VolumeTracking, or nullptr
  // (no hook) for a volume that is not attached. The manager must outlive the server.
  io::WriteHookProvider WriteHookProvider();
  // The volume's record and file are gone: fails its pending snapshot, deletes its dirty
  // state, and frees the block map entries no remaining snapshot reads. Its snapshots stay.
  Status VolumeDeleted(uint64_t volume_id);

  // Daemon shutdown, first step: refuses new snapshots (Busy) and cancels the running copies,
  // which stay pending and are failed by the next start's recovery, as after a crash. So a
  // policy round waiting for its snapshots ends instead of holding the stop up.
  void Shutdown();

  // --- Snapshots ---
  // Told about every snapshot created or deleted through this manager, whoever asked (a
  // D-Bus client, the policy scheduler), after the fact, on the caller's thread, without
  // the manager's lock held: the D-Bus layer turns them into signals. RemoveListener waits
  // for a call in progress.
  class Listener {
   public:
    virtual ~Listener() = default;
    virtual void SnapshotCreated(const SnapshotRecord& record) noexcept = 0;
    virtual void SnapshotRemoved(const SnapshotRecord& record) noexcept = 0;
  };
  void AddListener(Listener* listener);
  void RemoveListener(Listener* listener);

  // Fixes the point in time (pauses the volume's writes, swaps its dirty generation,
  // resumes) and returns the pending record; the copy runs in the background.
  Result<SnapshotRecord> Create(uint64_t volume_id, const Tags& tags);
  // By id ("snap-…"), with live progress when pending.
  Result<SnapshotRecord> Get(std::string_view id) const;
  // Blocks until the snapshot is no longer pending; returns its final record.
  Result<SnapshotRecord> Wait(std::string_view id);
  // Every snapshot (of one volume when given), oldest first.
  Result<std::vector<SnapshotRecord>> List(std::optional<uint64_t> volume_id = {}) const;
  // Deletes the snapshot and frees what no other snapshot or the live volume reads. kBusy
  // while it is pending, kLocked (deleting nothing) while it is locked.
  Status Delete(std::string_view id);
  // Locks or unlocks a snapshot (SnapshotRecord::locked, durable): a locked snapshot cannot
  // be deleted, by a client or by policy retention, until it is unlocked. Returns the
  // updated record; a call that changes nothing succeeds and writes nothing. kBusy while it
  // is pending (its job still rewrites the record).
  Result<SnapshotRecord> SetLocked(std::string_view id, bool locked);
  Result<SnapshotRecord> Tag(std::string_view id, const Tags& set,
                             const std::vector<std::string>& unset);
  // Raw image of a completed snapshot written to fd (sparse in a regular file; see
  // DumpSnapshot in snapshot_io.h); kCorruption on a bad chunk.
  Status Dump(std::string_view id, int fd);
  Result<VerifyReport> Verify(std::string_view id);
  // Chunks that differ between two completed snapshots of the same volume.
  Result<std::vector<uint64_t>> Diff(std::string_view from, std::string_view to);
  // One chunk of a completed snapshot (for read-only NBD exports), verified. NotFound when
  // the snapshot has been deleted, even if the read itself found bytes: once its record is
  // gone its block map entries may be collected, and a read at its version would then find
  // another snapshot's entry (or none: zeros) that passes the hash check.
  Status ReadChunk(const SnapshotRecord& snap, uint64_t chunk, std::string* out);
  // Bytes [offset, offset + length) of a snapshot into out, verified (NBD READ of an export).
  // NotFound when the snapshot has been deleted, as ReadChunk.
  Status Read(const SnapshotRecord& snap, uint64_t offset, uint64_t length, char* out,
              std::string* scratch);
  // [exports] True once snapshot `snap_id` (the number behind "snap-…") has been deleted
  // through this manager: its record is gone (synced) and its entries may be collected. Set
  // before the collection starts, so a read that then finds this false read the snapshot's
  // own entries. Never cleared (ids are never reused): one set entry per snapshot deleted
  // since the start. Cheap: a relaxed counter load when nothing was ever deleted, else a
  // short lock (not the manager's) and a set lookup.
  bool Deleted(uint64_t snap_id) const;
  // [exports] How many snapshots have been deleted since the start. An export that has
  // checked Deleted() at count n need not check again while the count is still n.
  uint64_t deletions() const { return deletions_.load(std::memory_order_acquire); }
  Result<StoreStats> Stats();
  // [exports] Records straight from RocksDB without the manager's lock and without live
  // progress: safe on an io loop while a control call (a snapshot instant) holds the lock.
  Result<SnapshotRecord> Peek(std::string_view id) const;
  // [exports] Every snapshot record (any state), oldest first; lock-free like Peek.
  Result<std::vector<SnapshotRecord>> PeekAll() const;

  // [restore] Makes the completed snapshot `snapshot` the base of the new, empty volume
  // `volume_id` (FORMAT.md "Restored volumes"): copies the snapshot's non-zero block map
  // entries as the volume's first version, each taking its own chunk reference, so the
  // volume's next snapshot is incremental against them and the data outlives the snapshot.
  // Calls on_chunk(c) for every copied chunk. Returns the base version. On failure the
  // entries already committed are the caller's to collect (VolumeDeleted).
  Result<uint64_t> CreateRestoreBase(std::string_view snapshot, uint64_t volume_id,
                                     const std::function<void(uint64_t chunk)>& on_chunk);

  ChunkStore& store() { return *store_; }
  BlockMap& block_map() { return map_; }

 private:
  Result<SnapshotRecord> CreateLocked(uint64_t volume_id, const Tags& tags);
  Result<SnapshotRecord> DeleteLocked(std::string_view id);
  template <typename F>
  void Notify(F&& call);
  SnapshotManager(Db& db, SnapshotManagerOptions options, std::unique_ptr<ChunkStore> store)
      : db_(db), options_(options), store_(std::move(store)), map_(db) {}
  Status Recover();
  Status DeleteOrphanDirtyState();  // part of Recover
  Result<SnapshotRecord> Load(std::string_view id) const;
  Result<SnapshotRecord> LoadCompleted(std::string_view id) const;
  // The versions of `volume_id` that still read the block map. Caller holds mu_.
  Result<LiveVersions> Live(uint64_t volume_id) const;
  Result<GcResult> Collect(uint64_t volume_id, uint64_t chunk_size);

  Db& db_;
  const SnapshotManagerOptions options_;
  std::unique_ptr<ChunkStore> store_;
  BlockMap map_;
  WriteGate* gate_ = nullptr;
  bool tracking_disabled_ = false;
  // Set by Shutdown: no new snapshots, and dumps into stalled streams end.
  std::atomic<bool> stopping_{false};

  // Serializes control-plane operations (create, delete, tag, attach, GC).
  std::mutex listeners_mu_;  // held while a listener runs (RemoveListener waits on it)
  std::vector<Listener*> listeners_;
  mutable std::mutex mu_;
  std::map<uint64_t, std::shared_ptr<VolumeTracking>> volumes_;
  // Volumes whose GC was skipped for a damaged record, so far (logged once each). Under mu_.
  std::set<uint64_t> gc_skipped_;

  // Snapshots deleted since the start (Deleted()). Its own lock: readers of exports must
  // never wait for mu_, which a snapshot instant or a GC holds for long.
  mutable std::mutex deleted_mu_;
  std::set<uint64_t> deleted_;
  std::atomic<uint64_t> deletions_{0};
};

}  // namespace blocksnap
