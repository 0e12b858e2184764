// RestoreHook: the write hook of a volume that is still hydrating. Wraps the volume's
// snapshot hook (WriteAdmission + dirty tracking).
//
// - Chunks all local (the hot path): straight to the inner hook, one bitmap test.
// - BeforeRead of a chunk not local: fills it (Hydration::Fill) on the pool, then lets the
//   read proceed: the read finds the origin's bytes in the file.
// - BeforeWrite touching a chunk not local: fills it first on the pool (so a partial write
//   lands on the origin's bytes, and the chunk is durably local before it can become
//   dirty), then asks the inner hook from the pool thread (hooks are thread-safe: every
//   loop calls them) and proceeds as it says.
// AfterWrite is owed to the inner hook only for requests that reached it: a failed fill is
// remembered until its AfterWrite arrives.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "io/store_pool.h"
#include "io/write_hook.h"
#include "snapshot/hydrator.h"

namespace blocksnap {

class RestoreHook final : public io::VolumeWriteHook {
 public:
  RestoreHook(std::shared_ptr<io::VolumeWriteHook> inner, std::shared_ptr<Hydration> hydration,
              io::StorePool& pool)
      : inner_(std::move(inner)), hydration_(std::move(hydration)), pool_(pool) {}

  int BeforeWrite(uint64_t offset, uint64_t length, io::HookWaiter& waiter) noexcept override;
  void AfterWrite(uint64_t offset, uint64_t length) noexcept override;
  int BeforeRead(uint64_t offset, uint64_t length, io::HookWaiter& waiter) noexcept override;
  uint64_t Unfilled(uint64_t offset, uint64_t length, bool* unfilled) const noexcept override;

 private:
  bool Local(uint64_t offset, uint64_t length) const;
  int InnerWrite(uint64_t offset, uint64_t length, io::HookWaiter& waiter) noexcept {
    return inner_ ? inner_->BeforeWrite(offset, length, waiter) : io::kHookReady;
  }

  const std::shared_ptr<io::VolumeWriteHook> inner_;
  const std::shared_ptr<Hydration> hydration_;
  io::StorePool& pool_;
  std::atomic<uint64_t> failed_count_{0};
  std::mutex failed_mu_;
  std::multimap<std::pair<uint64_t, uint64_t>, int> failed_;  // writes that never reached inner_
};

}  // namespace blocksnap
