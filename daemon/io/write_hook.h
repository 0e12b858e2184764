// The volume I/O seam: what must happen to a volume right before its file is mutated (or
// read).
//
// Every WRITE, TRIM and WRITE_ZEROES that the NBD server issues on a volume file passes
// VolumeExport::BeginMutation, which asks the volume's hook (if any) first. The snapshot
// layer installs one to make the touched chunks durably dirty and to copy chunks of a
// pending snapshot before they are overwritten (copy-before-write); both may have to wait,
// so the hook can answer "later" and resume the request from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

namespace blocksnap {
class Volume;
}

namespace blocksnap::io {

inline constexpr int kHookReady = 0;     // issue the mutation now
inline constexpr int kHookDeferred = 1;  // waiter.Proceed() follows exactly once
// Only ever passed to HookWaiter::Proceed, never returned: the hook's state moves on while
// the request waits (a snapshot instant is being fixed), so the request must end this
// passage through the hook (AfterWrite) and start it again (BeforeWrite), as if newly
// arrived. It has not touched the file.
inline constexpr int kHookRetry = 2;

// Embedded in each in-flight file operation (no allocation per request).
class HookWaiter {
 public:
  // 0: issue the mutation; -errno: fail the request with it; kHookRetry: call AfterWrite,
  // then BeforeWrite again. Callable from any thread, also before BeforeWrite returned; must
  // not block (the I/O loop is woken through its queue).
  virtual void Proceed(int res) noexcept = 0;

 protected:
  ~HookWaiter() = default;
};

class VolumeWriteHook {
 public:
  virtual ~VolumeWriteHook() = default;
  // Called on the I/O loop for bytes [offset, offset+length) about to change. Returns
  // kHookReady, kHookDeferred or -errno. The hot path (chunks already dirty, no snapshot
  // pending) should be an atomic test and return kHookReady.
  virtual int BeforeWrite(uint64_t offset, uint64_t length, HookWaiter& waiter) noexcept = 0;
  // Called on the I/O loop exactly once for every BeforeWrite call, when that request has
  // finished (its data write completed, or it failed at any step). Lets the snapshot layer
  // know when no write of the volume is in flight (the snapshot instant).
  virtual void AfterWrite(uint64_t /*offset*/, uint64_t /*length*/) noexcept {}
  // [snapshot] Called by the write gate around a snapshot instant, on a control thread. While
  // on, every write the hook holds waiting (and every one that would start waiting) is
  // answered Proceed(kHookRetry) instead, so that the gate's pause need not wait for it: such
  // a write has not touched the file yet, and it comes back through the gate after the
  // instant. The default holds nothing.
  virtual void HoldForInstant(bool /*on*/) noexcept {}
  // Called on the I/O loop before bytes [offset, offset+length) are read from the file.
  // Restore uses it to fill chunks that are not local yet from the chunk store (the read
  // then finds them in the file). Same results as BeforeWrite; the default lets reads run.
  virtual int BeforeRead(uint64_t /*offset*/, uint64_t /*length*/,
                         HookWaiter& /*waiter*/) noexcept {
    return kHookReady;
  }
  // [restore] Called on the I/O loop by BLOCK_STATUS for a range the file has as a hole:
  // returns the length n (0 < n <= length) of the leading run of [offset, offset+length)
  // whose bytes are all, or all not, "unfilled" (not in the file yet but read as data once
  // BeforeRead fills them), and sets *unfilled. Unfilled holes are reported as data. The
  // default: nothing is unfilled.
  virtual uint64_t Unfilled(uint64_t /*offset*/, uint64_t length, bool* unfilled) const noexcept {
    *unfilled = false;
    return length;
  }
};

// Chooses the hook of a volume when a connection opens it; empty or nullptr = none.
using WriteHookProvider = std::function<std::shared_ptr<VolumeWriteHook>(const Volume&)>;

}  // namespace blocksnap::io
