#include "wiring/write_admission.h"

namespace blocksnap {

int WriteAdmission::BeforeWrite(uint64_t offset, uint64_t length, io::HookWaiter& waiter) noexcept {
  in_flight_.fetch_add(1);
  if (paused_.load()) {
    std::unique_lock lock(mu_);
    if (paused_.load()) {
      queue_.push_back({offset, length, &waiter});
      drained_.notify_all();  // a queued request no longer holds up Pause()
      return io::kHookDeferred;
    }
  }
  return inner_->BeforeWrite(offset, length, waiter);
}

void WriteAdmission::AfterWrite(uint64_t offset, uint64_t length) noexcept {
  inner_->AfterWrite(offset, length);
  in_flight_.fetch_sub(1);
  if (paused_.load()) {
    std::lock_guard lock(mu_);  // pairs with the wait in Pause(): no lost wake-up
    drained_.notify_all();
  }
}

void WriteAdmission::Pause() {
  {
    std::lock_guard lock(mu_);
    paused_.store(true);
  }
  // Writes the inner hook holds (a first write to a clean chunk waiting for the synced batch
  // that records it dirty) are sent back to BeforeWrite, where they queue: the pause then
  // waits only for writes whose data is on its way to the file, not for a store fsync.
  // Outside mu_: a sent-back write leaves the gate from its Proceed (AfterWrite takes mu_).
  inner_->HoldForInstant(true);
  std::unique_lock lock(mu_);
  drained_.wait(lock, [&] { return in_flight_.load() == queue_.size(); });
}

void WriteAdmission::Resume() {
  inner_->HoldForInstant(false);
  std::vector<Queued> queued;
  {
    std::lock_guard lock(mu_);
    paused_.store(false);
    queued.swap(queue_);
  }
  for (const Queued& q : queued) {
    int r = inner_->BeforeWrite(q.offset, q.length, *q.waiter);
    if (r != io::kHookDeferred) q.waiter->Proceed(r < 0 ? r : 0);
  }
}

}  // namespace blocksnap
