// SnapshotJob: the background copy of one pending snapshot, and its copy-before-write.
//
// Created at the snapshot instant with the frozen dirty generation (the chunks that may
// differ from the previous snapshot). A worker thread reads each frozen chunk from the
// volume file, hashes it, and stages its block map entry and chunk; staged work is committed
// in bounded atomic batches with the record still `pending`, and the last batch marks it
// `completed` and deletes the frozen dirty generation. A write to a frozen chunk that is not
// copied yet is queued (BeforeWrite) and served first: the worker copies the old bytes, then
// lets the write proceed. On failure the snapshot's entries are dropped, its chunks
// released, the record becomes `error` and the frozen chunks become dirty again.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "snapshot/snapshot_record.h"
#include "store/block_map.h"
#include "store/chunk_store.h"
#include "util/task_threads.h"
#include "volume/dirty_tracker.h"
#include "volume/volume.h"

namespace blocksnap {

struct SnapshotJobOptions {
  // Commit staged chunks once they hold this many bytes. Each commit writes its new chunks
  // as one pack (one table file): bigger means fewer files. The job holds up to three times
  // this much: one batch staged while two earlier ones commit (SnapshotJob::Flush).
  uint64_t flush_bytes = 64 << 20;
  bool hold_sweep = false;          // tests: serve copy-before-write only, until Release()
  uint64_t stop_after_flushes = 0;  // tests: simulate a crash after this many commits (0: never)
};

class SnapshotJob {
 public:
  SnapshotJob(Db& db, BlockMap& map, ChunkStore& store, std::shared_ptr<Volume> volume,
              DirtyTracker& tracker, SnapshotRecord record, DirtyTracker::Frozen frozen,
              SnapshotJobOptions options);
  // Cancels (the snapshot stays pending, as after a crash) and joins the worker.
  ~SnapshotJob();
  SnapshotJob(const SnapshotJob&) = delete;
  SnapshotJob& operator=(const SnapshotJob&) = delete;

  // Records how long writes were paused for the instant; call before Start().
  void set_pause_us(uint64_t us);
  // The size of the frozen set, for progress; call before Start().
  void set_totals(uint64_t chunks, uint64_t bytes);
  void Start();

  // True when a chunk of [first, last] is frozen and not yet copied. Lock-free.
  bool NeedsCopy(uint64_t first, uint64_t last) const noexcept;
  // Copy-before-write, then MarkDirty. Returns kWriteReady, kWriteDeferred (the waiter is
  // called once the old bytes are copied and the chunks are durably dirty) or -errno.
  int BeforeWrite(uint64_t first, uint64_t last, WriteWaiter* waiter) noexcept;

  // The record with current progress.
  SnapshotRecord record() const;
  bool finished() const;
  // True when the job failed and could not record or undo that (a RocksDB error): the
  // volume must not take another snapshot before a restart's recovery has cleaned up.
  bool needs_recovery() const { return needs_recovery_.load(); }
  // Blocks until the job has finished (completed, failed or cancelled); returns the record.
  SnapshotRecord Wait();
  // Stops the worker without completing; the snapshot stays pending in RocksDB.
  void Cancel();
  // Stops the worker and fails the snapshot with `reason` (entries dropped, record error).
  void Abort(const std::string& reason);
  // Tests: lets a job created with hold_sweep start its sweep.
  void Release();

 private:
  void Run();
  Status Sweep();
  // Serves the writers queued so far: copies their frozen chunks not copied yet, then lets
  // them proceed. Commits (Flush) whenever the staged bytes reach flush_bytes, as the sweep
  // does: a writer may then also wait for a commit slot (the job's memory bound).
  Status ServeQueue();
  // Copy-before-write of one chunk: read, hash, stage.
  Status CopyChunk(uint64_t chunk);
  // The sweep's copy of batch_: every chunk read, then hashed by this thread and hasher_
  // (half each: SHA-256 is most of the worker's CPU), then staged in order. Queued
  // copy-before-write is served between reads and between stagings, so a writer waits for
  // at most one chunk and the hashing of one batch.
  Status CopyBatch();
  // Reads the chunk into dst (chunk_size bytes; zeros past the volume's end); its length.
  Result<uint64_t> ReadChunk(uint64_t chunk, uint8_t* dst);
  // Stages the chunk's map entry and bytes unless the previous version reads the same.
  Status StageChunk(uint64_t chunk, uint64_t len, std::span<const uint8_t> data,
                    const MapValue& value);
  // Commits the staged batch: the final one synchronously, after every earlier one; others
  // in the background while the worker goes on reading and hashing. Up to kCommitsInFlight
  // run at once: a commit compresses its pack on one core, so with two the compression of
  // one overlaps the other's and the worker's hashing (full snapshot of compressible data:
  // issue 8, docs/BENCHMARKS.md).
  Status Flush(bool final);
  // Waits for every background commit; the first failure among them.
  Status WaitCommit();
  Status SyncVolume();  // before the final commit
  Status Commit(ChunkTxn& txn, bool final);
  void Fail(const Status& why);
  // Lets every queued writer proceed (res < 0: fail them instead). Marks the queue closed.
  void ReleaseWaiters(int res);
  void Finish();

  Db& db_;
  BlockMap& map_;
  ChunkStore& store_;
  const std::shared_ptr<Volume> volume_;
  DirtyTracker& tracker_;
  const SnapshotJobOptions options_;
  DirtyTracker::Frozen frozen_;
  AtomicBitmap copied_;

  mutable std::mutex rec_mu_;
  SnapshotRecord record_;

  mutable std::mutex mu_;  // guards the queue and the flags below
  std::condition_variable cv_;
  std::vector<WaitingWrite> queue_;  // writers waiting for copy-before-write
  std::atomic<bool> queued_{false};  // worker's cheap "anything queued?" check
  bool closed_ = false;              // no more queueing: every frozen chunk is handled
  bool hold_ = false;
  bool finished_ = false;
  std::atomic<bool> cancel_{false};
  std::atomic<bool> failed_{false};
  std::atomic<bool> settled_{false};  // no chunk needs copy-before-write any more
  std::atomic<bool> needs_recovery_{false};

  // Worker-only state.
  static constexpr size_t kCommitsInFlight = 2;
  struct InFlight {
    ChunkTxn txn;                // the batch this background commit applies
    std::future<Status> commit;  // that commit, while it runs
  };
  ChunkTxn txn_;
  std::array<InFlight, kCommitsInFlight> in_flight_;
  size_t next_slot_ = 0;  // the slot the next background commit uses (round robin)
  std::string buffer_;    // CopyChunk's chunk
  // The sweep's batches: about kSweepBatchBytes of chunks, at least 2 (one per hashing
  // thread), at most kSweepBatchMaxChunks.
  static constexpr uint64_t kSweepBatchBytes = 1 << 20;
  static constexpr size_t kSweepBatchMaxChunks = 16;
  std::vector<uint64_t> batch_;       // the chunks
  std::vector<uint64_t> batch_lens_;  // their lengths; 0: copy-before-write took it
  std::vector<MapValue> batch_values_;
  std::string batch_buffer_;           // their bytes, chunk after chunk
  std::vector<WaitingWrite> serving_;  // the batch of queue_ being served (capacity reused)
  std::atomic<uint64_t> flushes_{0};   // commits done (background ones count from their threads)

  // Hashes half of each sweep batch; made by the worker when its sweep starts, not here:
  // the job is made while writes are held for the snapshot instant, and starting a thread
  // would lengthen that pause.
  std::unique_ptr<TaskThreads> hasher_;

  std::thread worker_;
};

}  // namespace blocksnap
