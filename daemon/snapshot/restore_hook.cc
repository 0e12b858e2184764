#include "snapshot/restore_hook.h"

namespace blocksnap {

bool RestoreHook::Local(uint64_t offset, uint64_t length) const {
  if (length == 0) return true;
  const uint64_t cs = hydration_->volume()->chunk_size();
  return hydration_->AllLocal(offset / cs, (offset + length - 1) / cs);
}

int RestoreHook::BeforeRead(uint64_t offset, uint64_t length, io::HookWaiter& waiter) noexcept {
  if (Local(offset, length))
    return inner_ ? inner_->BeforeRead(offset, length, waiter) : io::kHookReady;
  const uint64_t cs = hydration_->volume()->chunk_size();
  io::HookWaiter* w = &waiter;
  auto h = hydration_;
  pool_.Post([h, w, first = offset / cs, last = (offset + length - 1) / cs] {
    w->Proceed(h->Fill(first, last));
  });
  return io::kHookDeferred;
}

int RestoreHook::BeforeWrite(uint64_t offset, uint64_t length, io::HookWaiter& waiter) noexcept {
  if (Local(offset, length)) return InnerWrite(offset, length, waiter);
  const uint64_t cs = hydration_->volume()->chunk_size();
  io::HookWaiter* w = &waiter;
  pool_.Post([this, w, offset, length, cs] {
    // The hook (and so this) lives while a connection of the volume does, and a connection
    // waits for its requests: `this` is alive until Proceed.
    int r = hydration_->Fill(offset / cs, (offset + length - 1) / cs);
    if (r < 0) {
      {
        std::lock_guard lock(failed_mu_);
        failed_.emplace(std::make_pair(offset, length), 1);
      }
      failed_count_.fetch_add(1, std::memory_order_release);
      return w->Proceed(r);
    }
    r = InnerWrite(offset, length, *w);
    if (r != io::kHookDeferred) w->Proceed(r < 0 ? r : 0);
  });
  return io::kHookDeferred;
}

uint64_t RestoreHook::Unfilled(uint64_t offset, uint64_t length, bool* unfilled) const noexcept {
  const uint64_t cs = hydration_->volume()->chunk_size(), end = offset + length;
  uint64_t c = offset / cs;
  *unfilled = !hydration_->AllLocal(c, c);
  uint64_t run_end = (c + 1) * cs;
  while (run_end < end && !hydration_->AllLocal(run_end / cs, run_end / cs) == *unfilled)
    run_end += cs;
  return std::min(run_end, end) - offset;
}

void RestoreHook::AfterWrite(uint64_t offset, uint64_t length) noexcept {
  if (failed_count_.load(std::memory_order_acquire) != 0) {
    std::lock_guard lock(failed_mu_);
    if (auto it = failed_.find({offset, length}); it != failed_.end()) {
      failed_.erase(it);
      failed_count_.fetch_sub(1, std::memory_order_release);
      return;  // the inner hook never saw it
    }
  }
  if (inner_) inner_->AfterWrite(offset, length);
}

}  // namespace blocksnap
