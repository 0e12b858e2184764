#include "snapshot/snapshot_job.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "snapshot/gc.h"

namespace blocksnap {

SnapshotJob::SnapshotJob(Db& db, BlockMap& map, ChunkStore& store, std::shared_ptr<Volume> volume,
                         DirtyTracker& tracker, SnapshotRecord record, DirtyTracker::Frozen frozen,
                         SnapshotJobOptions options)
    : db_(db),
      map_(map),
      store_(store),
      volume_(std::move(volume)),
      tracker_(tracker),
      options_(options),
      frozen_(std::move(frozen)),
      copied_(frozen_.bits->size()),
      record_(std::move(record)),
      hold_(options.hold_sweep) {}

SnapshotJob::~SnapshotJob() {
  Cancel();
}

void SnapshotJob::set_pause_us(uint64_t us) {
  std::lock_guard lock(rec_mu_);
  record_.pause_us = us;
}

void SnapshotJob::set_totals(uint64_t chunks, uint64_t bytes) {
  std::lock_guard lock(rec_mu_);
  record_.chunks_total = chunks;
  record_.bytes_total = bytes;
}

void SnapshotJob::Start() {
  worker_ = std::thread([this] { Run(); });
}

bool SnapshotJob::NeedsCopy(uint64_t first, uint64_t last) const noexcept {
  // After the sweep (or a failure) the hot path is one load, not a scan of two bitmaps.
  if (settled_.load(std::memory_order_acquire)) return false;
  for (uint64_t w = first >> 6; w <= last >> 6; ++w) {
    uint64_t todo = frozen_.bits->Word(w) & ~copied_.Word(w);
    if (todo & AtomicBitmap::RangeMask(w, first, last)) return true;
  }
  return false;
}

int SnapshotJob::BeforeWrite(uint64_t first, uint64_t last, WriteWaiter* waiter) noexcept {
  {
    std::lock_guard lock(mu_);
    if (!closed_ && NeedsCopy(first, last)) {
      queue_.push_back({waiter, first, last});
      queued_.store(true, std::memory_order_release);
      cv_.notify_all();
      return kWriteDeferred;
    }
  }
  return tracker_.MarkDirty(first, last, waiter);
}

SnapshotRecord SnapshotJob::record() const {
  std::lock_guard lock(rec_mu_);
  return record_;
}

bool SnapshotJob::finished() const {
  std::lock_guard lock(mu_);
  return finished_;
}

SnapshotRecord SnapshotJob::Wait() {
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return finished_; });
  }
  return record();
}

void SnapshotJob::Cancel() {
  {
    std::lock_guard lock(mu_);
    cancel_.store(true);
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void SnapshotJob::Abort(const std::string& reason) {
  Cancel();
  if (record().pending()) Fail(Status(Code::kInternal, reason));
}

void SnapshotJob::Release() {
  {
    std::lock_guard lock(mu_);
    hold_ = false;
  }
  cv_.notify_all();
}

void SnapshotJob::Run() {
  Status st = Sweep();
  // The background commit ends first, whatever happens next.
  if (Status c = WaitCommit(); st.ok() && !cancel_.load()) st = c;
  if (st.ok() && !cancel_.load()) st = SyncVolume();
  if (st.ok() && !cancel_.load()) st = Flush(/*final=*/true);
  if (cancel_.load()) {
    // As if the daemon died here: the record stays pending; startup recovery fails it.
    ReleaseWaiters(-ECANCELED);
    Finish();
    return;
  }
  if (!st.ok()) Fail(st);
  Finish();
}

void SnapshotJob::Finish() {
  {
    std::lock_guard lock(mu_);
    finished_ = true;
  }
  cv_.notify_all();
}

Status SnapshotJob::Sweep() {
  const Status cancelled(Code::kInternal, "cancelled");
  {
    std::unique_lock lock(mu_);
    while (hold_ && !cancel_.load()) {
      cv_.wait(lock, [&] { return queued_.load() || !hold_ || cancel_.load(); });
      lock.unlock();
      BS_RETURN_IF_ERROR(ServeQueue());
      lock.lock();
    }
  }
  const AtomicBitmap& frozen = *frozen_.bits;
  if (!hasher_)
    hasher_ = std::make_unique<TaskThreads>(1, TaskThreads::AtStop::kDrain, "snapshot hashing");
  const size_t batch_max =
      std::clamp<size_t>(kSweepBatchBytes / volume_->chunk_size(), 2, kSweepBatchMaxChunks);
  batch_.clear();
  for (uint64_t w = 0; w < frozen.words(); ++w) {
    for (uint64_t bits = frozen.Word(w); bits; bits &= bits - 1) {
      if (cancel_.load(std::memory_order_relaxed)) return cancelled;
      // Writers waiting on copy-before-write go first: they hold up client I/O.
      if (queued_.load(std::memory_order_acquire)) BS_RETURN_IF_ERROR(ServeQueue());
      uint64_t c = w * 64 + static_cast<uint64_t>(__builtin_ctzll(bits));
      if (copied_.Test(c)) continue;
      batch_.push_back(c);
      if (batch_.size() == batch_max) BS_RETURN_IF_ERROR(CopyBatch());
    }
  }
  if (!batch_.empty()) BS_RETURN_IF_ERROR(CopyBatch());
  // Every frozen chunk is copied; serve the stragglers and close the queue so later writers
  // go straight to the dirty tracker.
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (queue_.empty()) {
        closed_ = true;
        settled_.store(true, std::memory_order_release);
        break;
      }
    }
    BS_RETURN_IF_ERROR(ServeQueue());
  }
  return Status::Ok();
}

Status SnapshotJob::ServeQueue() {
  {
    std::lock_guard lock(mu_);
    serving_.clear();
    std::swap(serving_, queue_);
    queued_.store(false, std::memory_order_release);
  }
  Status st;
  for (const WaitingWrite& w : serving_) {
    for (uint64_t c = w.first; st.ok() && c <= w.last; ++c) {
      if (!frozen_.bits->Test(c) || copied_.Test(c)) continue;
      st = CopyChunk(c);
      // The same bound as the sweep's: copy-before-write alone (writes to frozen chunks
      // faster than the sweep) must not grow one batch without limit. Only this worker
      // thread stages and flushes.
      if (st.ok() && txn_.staged_bytes() >= options_.flush_bytes) st = Flush(/*final=*/false);
    }
    // A failed copy dooms the snapshot, not the write: it proceeds either way.
    if (!st.ok()) {
      failed_.store(true, std::memory_order_release);
      settled_.store(true, std::memory_order_release);
    }
    int r = tracker_.MarkDirty(w.first, w.last, w.waiter);
    if (r != kWriteDeferred) w.waiter->Proceed(r);
  }
  return st;
}

// The final commit ends the frozen generation: its dirty bits go, and no later snapshot
// copies those chunks again. The bytes this one read from the page cache must be on disk
// by then, or after a power loss the image would hold older bytes than every later
// snapshot records for those chunks.
Status SnapshotJob::SyncVolume() {
  while (::fdatasync(volume_->fd()) != 0) {
    if (errno != EINTR) return FromErrno(errno, "syncing volume " + volume_->name());
  }
  return Status::Ok();
}

Result<uint64_t> SnapshotJob::ReadChunk(uint64_t chunk, uint8_t* dst) {
  const uint64_t cs = volume_->chunk_size();
  const uint64_t off = chunk * cs;
  const uint64_t len = std::min(cs, volume_->size() - off);
  uint64_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(volume_->fd(), dst + done, len - done, static_cast<off_t>(off + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      return FromErrno(errno,
                       "reading chunk " + std::to_string(chunk) + " of volume " + volume_->name());
    if (n == 0) break;  // past the end of a short file: zeros
    done += static_cast<uint64_t>(n);
  }
  // The tail past the volume's end (or the file's) is zero: every stored chunk is cs bytes.
  std::memset(dst + done, 0, cs - done);
  return len;
}

namespace {
MapValue ValueOf(std::span<const uint8_t> data) {
  return IsAllZero(data) ? MapValue::Zero() : MapValue::Of(Sha256(data));
}
}  // namespace

Status SnapshotJob::CopyChunk(uint64_t chunk) {
  buffer_.resize(volume_->chunk_size());
  auto* dst = reinterpret_cast<uint8_t*>(buffer_.data());
  BS_ASSIGN_OR_RETURN(const uint64_t len, ReadChunk(chunk, dst));
  std::span<const uint8_t> data(dst, buffer_.size());
  return StageChunk(chunk, len, data, ValueOf(data));
}

Status SnapshotJob::CopyBatch() {
  const uint64_t cs = volume_->chunk_size();
  const size_t n = batch_.size();
  batch_buffer_.resize(n * cs);
  batch_values_.resize(n);
  batch_lens_.assign(n, 0);
  auto* base = reinterpret_cast<uint8_t*>(batch_buffer_.data());
  auto data = [&](size_t i) { return std::span<const uint8_t>(base + i * cs, cs); };
  // A chunk copied by copy-before-write meanwhile is left out (its length stays 0). Its
  // writer may have written since: whatever this batch read of it is not staged.
  auto serve = [&]() -> Status {
    return queued_.load(std::memory_order_acquire) ? ServeQueue() : Status::Ok();
  };
  for (size_t i = 0; i < n; ++i) {
    BS_RETURN_IF_ERROR(serve());
    if (copied_.Test(batch_[i])) continue;
    BS_ASSIGN_OR_RETURN(batch_lens_[i], ReadChunk(batch_[i], base + i * cs));
  }
  auto hash = [&](size_t from, size_t to) {
    for (size_t i = from; i < to; ++i)
      if (batch_lens_[i] != 0) batch_values_[i] = ValueOf(data(i));
  };
  const size_t half = n / 2;
  hasher_->Post([&] { hash(half, n); });
  hash(0, half);
  hasher_->WaitIdle();
  for (size_t i = 0; i < n; ++i) {
    BS_RETURN_IF_ERROR(serve());
    if (batch_lens_[i] == 0 || copied_.Test(batch_[i])) continue;
    BS_RETURN_IF_ERROR(StageChunk(batch_[i], batch_lens_[i], data(i), batch_values_[i]));
    if (txn_.staged_bytes() >= options_.flush_bytes) BS_RETURN_IF_ERROR(Flush(/*final=*/false));
  }
  batch_.clear();
  return Status::Ok();
}

Status SnapshotJob::StageChunk(uint64_t chunk, uint64_t len, std::span<const uint8_t> data,
                               const MapValue& value) {
  // Write an entry only when the chunk differs from what this version would read without one.
  SnapshotRecord& r = record_;
  BS_ASSIGN_OR_RETURN(auto prev, map_.Lookup(volume_->id(), chunk, r.version - 1));
  const bool unchanged = prev ? *prev == value : value.zero;
  if (!unchanged) {
    map_.StagePut(txn_.batch(), volume_->id(), chunk, r.version, value);
    // The bytes go to the store now, outside the WAL; the commit makes them durable first.
    if (!value.zero) BS_RETURN_IF_ERROR(store_.PutNow(txn_, value.hash, data));
  }
  copied_.Set(chunk);
  std::lock_guard lock(rec_mu_);
  if (!unchanged) r.chunks++;
  r.chunks_done++;
  r.bytes_done += len;
  return Status::Ok();
}

Status SnapshotJob::Flush(bool final) {
  if (final) BS_RETURN_IF_ERROR(WaitCommit());
  InFlight& slot = in_flight_[next_slot_];
  // The slot's previous commit is the oldest one running; once it is done its txn is
  // empty (the commit cleared it, or Fail discarded it).
  if (slot.commit.valid()) BS_RETURN_IF_ERROR(slot.commit.get());
  if (options_.stop_after_flushes) {
    // Tests count commits exactly: nothing runs in the background in this mode.
    BS_RETURN_IF_ERROR(WaitCommit());
  }
  if (options_.stop_after_flushes && flushes_.load() >= options_.stop_after_flushes) {
    cancel_.store(true);  // tests: "die" here, with nothing more committed
    return Status(Code::kInternal, "cancelled");
  }
  if (final) return Commit(txn_, /*final=*/true);
  txn_.Swap(slot.txn);
  next_slot_ = (next_slot_ + 1) % kCommitsInFlight;
  slot.commit = std::async(std::launch::async, [this, &slot] { return Commit(slot.txn, false); });
  return Status::Ok();
}

Status SnapshotJob::WaitCommit() {
  Status first;
  for (InFlight& slot : in_flight_) {
    if (!slot.commit.valid()) continue;
    if (Status st = slot.commit.get(); first.ok()) first = st;
  }
  return first;
}

Status SnapshotJob::Commit(ChunkTxn& txn, bool final) {
  auto result = store_.Commit(txn, [&](const CommitInfo& info, rocksdb::WriteBatch& b) {
    std::lock_guard lock(rec_mu_);
    record_.added_bytes += info.added_bytes;
    if (final) record_.state = std::string(kSnapCompleted);
    // Progress as of now (the worker may be ahead of this batch; a crash fails it anyway).
    b.Put(db_.cf(Cf::kMeta), record_.Key(), EncodeSnapshotRecord(record_));
    // Completion and the end of the frozen generation are one atomic step.
    if (final) tracker_.StageCompleted(b, frozen_.generation);
  });
  if (result.ok()) {
    ++flushes_;
  } else if (final) {
    // The batch that would have completed it did not land: in memory it is pending again,
    // so that Abort (a volume delete racing this failure) still fails it.
    std::lock_guard lock(rec_mu_);
    record_.state = std::string(kSnapPending);
  }
  return result.status();
}

void SnapshotJob::ReleaseWaiters(int res) {
  std::vector<WaitingWrite> list;
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    settled_.store(true, std::memory_order_release);
    std::swap(list, queue_);
    queued_.store(false);
  }
  for (const WaitingWrite& w : list) {
    int r = res < 0 ? res : tracker_.MarkDirty(w.first, w.last, w.waiter);
    if (r != kWriteDeferred) w.waiter->Proceed(r);
  }
}

void SnapshotJob::Fail(const Status& why) {
  failed_.store(true, std::memory_order_release);
  settled_.store(true, std::memory_order_release);
  ReleaseWaiters(0);
  const std::string id = record().IdString();
  {
    std::lock_guard lock(rec_mu_);
    record_.state = std::string(kSnapError);
    record_.error = why.message();
    record_.chunks = 0;
    record_.added_bytes = 0;
  }
  // Whatever goes wrong below leaves the record `pending` in RocksDB, which startup recovery
  // turns into `error` the same way; until then the volume refuses new snapshots.
  auto complain = [&](const char* what, const Status& st) {
    needs_recovery_ = true;
    spdlog::error("snapshot {}: {}: {}; startup recovery will finish it", id, what, st.message());
  };
  // The frozen chunks must be copied by the next snapshot: dirty again (durably) first.
  if (Status st = tracker_.Unfreeze(frozen_); !st.ok())
    return complain("restoring dirty chunks", st);
  // Unreferenced chunk bytes this job wrote since its last commit go (else: next start).
  (void)WaitCommit();  // Run has collected it already, unless it never ran
  auto discard = [&](ChunkTxn& t) {
    if (Status st = store_.Discard(t); !st.ok())
      spdlog::warn("snapshot {}: deleting its uncommitted chunks: {}, ignoring", id, st.message());
  };
  for (InFlight& slot : in_flight_) discard(slot.txn);
  discard(txn_);
  auto dropped =
      StageDropVersion(map_, store_, txn_, volume_->id(), record_.version, volume_->chunk_size());
  if (!dropped.ok()) {
    txn_.Clear();
    return complain("dropping its entries", dropped.status());
  }
  txn_.batch().Put(db_.cf(Cf::kMeta), record_.Key(), EncodeSnapshotRecord(record()));
  if (auto c = store_.Commit(txn_); !c.ok()) complain("recording the failure", c.status());
  txn_.Clear();
}

}  // namespace blocksnap
