// WriteAdmission: the per-volume gate that lets a snapshot fix its point in time.
//
// Wraps the volume's snapshot write hook. Every write, trim and write-zeroes is "admitted"
// from its BeforeWrite until its AfterWrite (its data write completed or it failed). Pause()
// stops admitting (new requests wait in a queue, reads are unaffected) and returns once no
// admitted request is in flight; Resume() lets the queued ones go on. Between the two the
// snapshot swaps the dirty generation, so every write is entirely before the instant (its
// chunk is in the frozen set and its bytes are in the file) or entirely after it (its chunk
// is dirty in the new generation, and copy-before-write saves the old bytes first).
//
// A write the inner hook holds waiting when the pause starts (its chunk's dirty commit) does
// not hold the pause up: the hook answers it kHookRetry (io/write_hook.h), and it comes back
// through BeforeWrite into the queue, to run after the instant. So the pause is bounded by
// the data writes in flight, not by the store's fsync.
//
// Hot path: one atomic increment and one load on entry, one decrement on exit; no lock and
// no allocation unless the volume is paused.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>

#include "io/write_hook.h"

namespace blocksnap {

class WriteAdmission final : public io::VolumeWriteHook {
 public:
  explicit WriteAdmission(std::shared_ptr<io::VolumeWriteHook> inner) : inner_(std::move(inner)) {}

  int BeforeWrite(uint64_t offset, uint64_t length, io::HookWaiter& waiter) noexcept override;
  void AfterWrite(uint64_t offset, uint64_t length) noexcept override;
  int BeforeRead(uint64_t offset, uint64_t length, io::HookWaiter& waiter) noexcept override {
    return inner_->BeforeRead(offset, length, waiter);
  }
  uint64_t Unfilled(uint64_t offset, uint64_t length, bool* unfilled) const noexcept override {
    return inner_->Unfilled(offset, length, unfilled);
  }

  // Stops admitting writes, sends the ones the inner hook holds back to the queue, and waits
  // until no admitted write is in flight. Control threads only; pairs with Resume().
  void Pause();
  // Admits writes again; requests queued while paused continue (from this thread).
  void Resume();

 private:
  struct Queued {
    uint64_t offset, length;
    io::HookWaiter* waiter;
  };

  const std::shared_ptr<io::VolumeWriteHook> inner_;
  // Requests between BeforeWrite and AfterWrite, queued ones included. seq_cst with paused_:
  // a writer that read paused_ == false has already counted itself, so Pause() waits for it.
  std::atomic<uint64_t> in_flight_{0};
  std::atomic<bool> paused_{false};
  std::mutex mu_;
  std::condition_variable drained_;
  std::vector<Queued> queue_;  // guarded by mu_
};

}  // namespace blocksnap
