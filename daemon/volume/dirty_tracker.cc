#include "volume/dirty_tracker.h"

#include <algorithm>
#include <cerrno>

#include "volume/dirty_state.h"
#include "volume/volume.h"

namespace blocksnap {

DirtyTracker::DirtyTracker(Db& db, uint64_t volume, uint64_t chunk_count)
    : db_(db),
      volume_(volume),
      chunk_count_(chunk_count),
      durable_owner_(std::make_unique<AtomicBitmap>(chunk_count)),
      durable_(durable_owner_.get()),
      requested_(std::make_unique<AtomicBitmap>(chunk_count)),
      mirror_(AtomicBitmap::WordCount(chunk_count), 0) {}

Result<std::unique_ptr<DirtyTracker>> DirtyTracker::Open(Db& db, uint64_t volume,
                                                         uint64_t chunk_count, bool fresh) {
  std::unique_ptr<DirtyTracker> t(new DirtyTracker(db, volume, chunk_count));
  if (fresh) {
    std::lock_guard w(t->write_mu_);
    BS_RETURN_IF_ERROR(t->WriteConsolidated(1).WithContext("initialising dirty state"));
  } else {
    AtomicBitmap loaded(chunk_count);
    BS_ASSIGN_OR_RETURN(DirtyLoad load, LoadDirtyState(db, volume, loaded));
    if (!load.usable) {
      // Unknown: every chunk counts as dirty (a snapshot would copy all of them) until a
      // rescan narrows it. Nothing is written, so a crash before the rescan rescans again.
      t->needs_rescan_ = true;
      t->rescan_reason_ = load.reason;
      for (uint64_t w = 0; w < loaded.words(); ++w) {
        t->durable()->SetWord(w, ~uint64_t{0});
        t->requested_->SetWord(w, ~uint64_t{0});
      }
    } else {
      // Fold every generation found (current + frozen ones of unfinished snapshots) into a
      // fresh one, durably, so the state is one generation again.
      std::lock_guard w(t->write_mu_);
      for (uint64_t i = 0; i < loaded.words(); ++i) t->mirror_[i] = loaded.Word(i);
      t->generation_ = load.max_generation + 1;
      BS_RETURN_IF_ERROR(t->WriteConsolidated(t->generation_).WithContext("folding dirty state"));
      t->durable()->CopyFrom(loaded);
      t->requested_->CopyFrom(loaded);
    }
  }
  t->committer_ = std::thread([p = t.get()] { p->CommitterLoop(); });
  return t;
}

DirtyTracker::~DirtyTracker() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  if (committer_.joinable()) committer_.join();
}

Status DirtyTracker::WriteConsolidated(uint64_t generation) {
  rocksdb::WriteBatch b;
  StageDeleteDirtyState(db_, b, volume_);
  StageDirtyHeader(db_, b, volume_, chunk_count_);
  for (uint64_t w = 0; w < mirror_.size(); ++w)
    if (mirror_[w]) StageDirtyWord(db_, b, volume_, generation, w, mirror_[w]);
  return db_.Write(b, /*sync=*/true);
}

int DirtyTracker::MarkDirtySlow(uint64_t first, uint64_t last, WriteWaiter* waiter) noexcept {
  std::unique_lock lock(mu_);
  if (stop_) return -ECANCELED;
  AtomicBitmap* durable = this->durable();
  if (durable->TestAll(first, last)) return kWriteReady;
  if (hold_) {
    // A snapshot instant is being fixed: this write would only hold the pause up. It comes
    // back after the instant and asks in the next generation.
    lock.unlock();
    waiter->Proceed(kWriteRetry);
    return kWriteDeferred;
  }
  for (uint64_t c = first; c <= last; ++c)
    if (!durable->Test(c) && requested_->Set(c)) pending_.push_back(c);
  // The waiter joins the next commit even when its chunks are all in the one in flight:
  // commits are sequential, so by the time the next one finishes the earlier one has too.
  waiters_.push_back({waiter, first, last});
  lock.unlock();
  work_cv_.notify_one();
  return kWriteDeferred;
}

void DirtyTracker::CommitterLoop() {
  std::unique_lock lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [&] { return stop_ || !waiters_.empty() || !pending_.empty(); });
    if (waiters_.empty() && pending_.empty()) break;  // stop_ and nothing left
    spare_.clear();
    std::swap(spare_, pending_);
    committing_waiters_.clear();
    std::swap(committing_waiters_, waiters_);
    committing_ = true;
    const uint64_t gen = committing_gen_ = generation_;

    // mirror_ is updated and its words read under mu_ (Freeze swaps it for the next
    // generation's), but the batch is built after mu_ is released: writes reaching clean
    // chunks meanwhile queue without waiting for it. write_mu_ is taken before mu_ is
    // released, so batches land in the order their words were read.
    staged_.clear();
    for (uint64_t c : spare_) mirror_[c >> 6] |= uint64_t{1} << (c & 63);
    for (uint64_t c : spare_) staged_.push_back({c >> 6, mirror_[c >> 6]});
    std::unique_lock w(write_mu_);
    lock.unlock();
    // A word read twice has the same value both times (read after every bit was set).
    std::sort(staged_.begin(), staged_.end());
    staged_.erase(std::unique(staged_.begin(), staged_.end()), staged_.end());
    rocksdb::WriteBatch b;
    for (const auto& [word, bits] : staged_) StageDirtyWord(db_, b, volume_, gen, word, bits);
    Status st;
    if (!spare_.empty()) {
      st = db_.Write(b, /*sync=*/true);
      commits_.fetch_add(1, std::memory_order_relaxed);
    }
    w.unlock();

    lock.lock();
    // If an instant passed during the write (Freeze), the words landed as the frozen
    // generation's: a harmless superset there, since no write of these chunks was issued.
    // The current generation has its own bitmaps and must request them anew.
    const bool moved_on = gen != generation_;
    // A waiter whose chunks are not durable after this commit had them in this commit or
    // in an earlier one that failed: it gets that failure's errno (ENOSPC on a full disk).
    if (!st.ok()) failed_errno_ = RequestErrno(st);
    if (!moved_on) {
      for (uint64_t c : spare_) {
        if (st.ok())
          durable()->Set(c);
        else
          requested_->Clear(c);  // a later write retries the commit
      }
    }
    committing_ = false;
    // Decided under mu_, together with the bitmaps: a waiter released here is one the write
    // gate waits for; one that HoldWaiters or Freeze took from the list is sent back instead.
    releasing_.clear();
    std::swap(releasing_, committing_waiters_);
    for (WaitingWrite& ww : releasing_) {
      if (moved_on)
        ww.result = kWriteRetry;
      else
        ww.result = durable()->TestAll(ww.first, ww.last) ? 0 : -failed_errno_;
    }
    lock.unlock();
    idle_cv_.notify_all();  // StageCompleted waits for the commit of its generation
    // Outside the lock: a waiter may call MarkDirty again from its callback.
    for (const WaitingWrite& ww : releasing_) ww.waiter->Proceed(ww.result);
    lock.lock();
    if (waiters_.empty() && pending_.empty()) idle_cv_.notify_all();
  }
  idle_cv_.notify_all();
}

void DirtyTracker::SendBack(std::vector<WaitingWrite>& out) {
  out.insert(out.end(), waiters_.begin(), waiters_.end());
  out.insert(out.end(), committing_waiters_.begin(), committing_waiters_.end());
  waiters_.clear();
  committing_waiters_.clear();
}

void DirtyTracker::HoldWaiters(bool on) noexcept {
  std::vector<WaitingWrite> back;  // a control-path allocation, once per snapshot
  {
    std::lock_guard lock(mu_);
    hold_ = on;
    if (on) SendBack(back);
  }
  for (const WaitingWrite& ww : back) ww.waiter->Proceed(kWriteRetry);
}

void DirtyTracker::WaitIdle() {
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock,
                [&] { return stop_ || (!committing_ && waiters_.empty() && pending_.empty()); });
}

DirtyTracker::Spare DirtyTracker::PrepareFreeze() const {
  return {std::make_unique<AtomicBitmap>(chunk_count_),
          std::make_unique<AtomicBitmap>(chunk_count_),
          std::vector<uint64_t>(AtomicBitmap::WordCount(chunk_count_), 0)};
}

DirtyTracker::Frozen DirtyTracker::Freeze(Spare&& spare) {
  Frozen f;
  std::vector<WaitingWrite> back;
  {
    std::lock_guard lock(mu_);
    f.generation = generation_++;
    // The current bitmap itself becomes the frozen set: no copy while writes are paused.
    f.bits = std::exchange(durable_owner_, std::move(spare.durable));
    durable_.store(durable_owner_.get(), std::memory_order_release);
    requested_.swap(spare.requested);
    mirror_.swap(spare.mirror);
    // Chunks queued but not committed had no write issued: the writes that wanted them ask
    // again in the new generation. A commit in flight is not waited for (CommitterLoop).
    pending_.clear();
    SendBack(back);
  }
  for (const WaitingWrite& ww : back) ww.waiter->Proceed(kWriteRetry);
  return f;
}

void DirtyTracker::StageCompleted(rocksdb::WriteBatch& b, uint64_t frozen_generation) {
  // A commit of the frozen generation still in flight would land after the deletion and
  // leave its words behind (a superset, but one every later snapshot would copy again).
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [&] { return stop_ || !committing_ || committing_gen_ > frozen_generation; });
  StageDeleteGeneration(db_, b, volume_, frozen_generation);
}

Status DirtyTracker::Unfreeze(const Frozen& frozen) {
  rocksdb::WriteBatch b;
  std::unique_lock lock(mu_);  // mirror_; then write_mu_ before mu_ is released (CommitterLoop)
  const uint64_t gen = generation_;
  for (uint64_t i = 0; i < frozen.bits->words(); ++i) {
    uint64_t bits = frozen.bits->Word(i);
    if (!bits) continue;
    mirror_[i] |= bits;
    StageDirtyWord(db_, b, volume_, gen, i, mirror_[i]);
  }
  StageDeleteGeneration(db_, b, volume_, frozen.generation);
  std::lock_guard w(write_mu_);
  lock.unlock();
  BS_RETURN_IF_ERROR(db_.Write(b, /*sync=*/true));
  // The bitmaps are atomic; a chunk queued twice meanwhile only costs a redundant commit.
  for (uint64_t i = 0; i < frozen.bits->words(); ++i) {
    requested_->OrWord(i, frozen.bits->Word(i));
    durable()->OrWord(i, frozen.bits->Word(i));
  }
  return Status::Ok();
}

Status DirtyTracker::Reset(const AtomicBitmap& bits) {
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock,
                [&] { return stop_ || (!committing_ && waiters_.empty() && pending_.empty()); });
  std::lock_guard w(write_mu_);
  for (uint64_t i = 0; i < mirror_.size(); ++i) mirror_[i] = bits.Word(i);
  ++generation_;
  BS_RETURN_IF_ERROR(WriteConsolidated(generation_));
  durable()->CopyFrom(bits);
  requested_->CopyFrom(bits);
  needs_rescan_ = false;
  rescan_reason_.clear();
  return Status::Ok();
}

Status DirtyTracker::DeleteDurable() {
  WaitIdle();
  {
    // Stop the committer first: nothing may write this volume's state again.
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  if (committer_.joinable()) committer_.join();
  std::lock_guard w(write_mu_);
  rocksdb::WriteBatch b;
  StageDeleteDirtyState(db_, b, volume_);
  return db_.Write(b, /*sync=*/true);
}

}  // namespace blocksnap
