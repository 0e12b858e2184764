// Transmission phase: validates each request, runs it on the export and encodes its reply.
//
// Sans-I/O: the transport reads a header (and a WRITE's payload) into a Slot, calls Handle,
// and later gets exactly one ReplySink::SendReply(slot) with the reply as an iovec list.
// Slots are pooled by the transport and reused, so buffers keep their capacity and the hot
// path allocates nothing once warm. Replies may complete in any order.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <new>
#include <span>
#include <vector>

#include "nbd/export.h"
#include "nbd/handshake.h"
#include "nbd/reply.h"
#include "nbd/request.h"

namespace blocksnap::nbd {

// A byte buffer that keeps its capacity and does not zero-fill (reads overwrite it).
// Page-aligned: the kernel's copies between it and page-cache or socket pages then run page
// to page instead of splitting every page in two (1 MiB reads over NBD: +3-6% throughput and
// 3-6% less server CPU on tmpfs and ext4, docs/BENCHMARKS.md).
class Buffer {
 public:
  static constexpr size_t kAlignment = 4096;

  uint8_t* data() { return buf_.get(); }
  size_t size() const { return size_; }
  std::span<uint8_t> span() { return {buf_.get(), size_}; }
  void Resize(size_t n) {
    if (n > capacity_) {
      buf_.reset(static_cast<uint8_t*>(::operator new[](n, std::align_val_t{kAlignment})));
      capacity_ = n;
    }
    size_ = n;
  }
  size_t capacity() const { return capacity_; }
  // Gives memory back after an unusually large request.
  void Shrink(size_t keep) {
    if (capacity_ > keep) {
      buf_.reset();
      capacity_ = size_ = 0;
    }
  }

 private:
  struct AlignedDelete {
    void operator()(uint8_t* p) const { ::operator delete[](p, std::align_val_t{kAlignment}); }
  };
  std::unique_ptr<uint8_t[], AlignedDelete> buf_;
  size_t capacity_ = 0;
  size_t size_ = 0;
};

class Transmission;

// One in-flight request and its reply.
class Slot final : public Completion {
 public:
  Request req;
  Buffer data;  // WRITE payload in, READ data out
  // The reply, valid from SendReply until the transport releases the slot. iov points into
  // reply_bytes and data.
  Bytes reply_bytes;
  std::vector<iovec> iov;

  void Complete(int result) noexcept override;

 private:
  friend class Transmission;
  Transmission* tx_ = nullptr;
  size_t context_pos_ = 0;  // BLOCK_STATUS: which selected context runs now
  std::vector<Extent> extents_;
};

class ReplySink {
 public:
  // slot.iov holds the complete reply; the transport sends it and then releases the slot.
  // May be called from inside Transmission::Handle (inline completion).
  virtual void SendReply(Slot& slot) noexcept = 0;

 protected:
  ~ReplySink() = default;
};

class Transmission {
 public:
  Transmission(std::unique_ptr<Export> exp, Negotiated neg, ReplySink& sink);

  // Starts the request in slot (header parsed, payload read). Exactly one SendReply(slot)
  // follows, possibly before Handle returns.
  void Handle(Slot& slot) noexcept;

  Export& exp() { return *export_; }
  const ExportInfo& info() const { return info_; }
  const Negotiated& negotiated() const { return neg_; }

  // Builds the error reply for a request refused before it reached Handle (e.g. an
  // oversized WRITE whose payload was never read), then calls SendReply.
  void RejectRequest(Slot& slot, uint32_t nbd_error) noexcept;

 private:
  friend class Slot;
  void OnComplete(Slot& slot, int result) noexcept;
  void StartBlockStatus(Slot& slot) noexcept;
  void FinishBlockStatusContext(Slot& slot) noexcept;
  void FinishRead(Slot& slot) noexcept;
  void FinishError(Slot& slot, uint32_t nbd_error) noexcept;
  void FinishOk(Slot& slot) noexcept;

  std::unique_ptr<Export> export_;
  ExportInfo info_;
  Negotiated neg_;
  std::vector<std::string> contexts_;
  ReplySink& sink_;
};

}  // namespace blocksnap::nbd
