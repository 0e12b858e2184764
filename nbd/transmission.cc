#include "nbd/transmission.h"

#include <algorithm>
#include <cstring>

#include "nbd/errors.h"
#include "nbd/meta_context.h"

namespace blocksnap::nbd {
namespace {

// Granularity at which a structured READ reply turns all-zero data into hole chunks.
constexpr size_t kHoleGranularity = 4096;

bool IsZero(const uint8_t* p, size_t n) {
  return n == 0 || (p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0);
}

}  // namespace

void Slot::Complete(int result) noexcept {
  tx_->OnComplete(*this, result);
}

Transmission::Transmission(std::unique_ptr<Export> exp, Negotiated neg, ReplySink& sink)
    : export_(std::move(exp)),
      info_(export_->info()),
      neg_(std::move(neg)),
      contexts_(export_->MetaContexts()),
      sink_(sink) {}

void Transmission::Handle(Slot& slot) noexcept {
  slot.tx_ = this;
  slot.reply_bytes.clear();
  slot.iov.clear();
  const Request& r = slot.req;
  if (uint32_t err = ValidateRequest(r, info_, neg_)) return FinishError(slot, err);
  if (r.length == 0 && r.type != kCmdFlush) {
    // Zero-length requests are pointless but legal: answer them without the export.
    return r.type == kCmdRead ? FinishRead(slot) : FinishOk(slot);
  }
  const bool fua = r.flags & kCmdFlagFua;
  switch (r.type) {
    case kCmdRead:
      slot.data.Resize(r.length);
      return export_->Read(r.offset, slot.data.span(), slot);
    case kCmdWrite:
      return export_->Write(r.offset, {slot.data.data(), r.length}, fua, slot);
    case kCmdFlush:
      return export_->Flush(slot);
    case kCmdTrim:
      return export_->Trim(r.offset, r.length, fua, slot);
    case kCmdWriteZeroes:
      return export_->Zero(r.offset, r.length,
                           ZeroFlags{.fua = fua,
                                     .no_hole = bool(r.flags & kCmdFlagNoHole),
                                     .fast = bool(r.flags & kCmdFlagFastZero)},
                           slot);
    case kCmdCache:
      return export_->Cache(r.offset, r.length, slot);
    case kCmdBlockStatus:
      slot.context_pos_ = 0;
      return StartBlockStatus(slot);
  }
  FinishError(slot, kEINVAL);  // unreachable: ValidateRequest knows every command
}

void Transmission::RejectRequest(Slot& slot, uint32_t nbd_error) noexcept {
  slot.tx_ = this;
  slot.reply_bytes.clear();
  slot.iov.clear();
  FinishError(slot, nbd_error);
}

void Transmission::OnComplete(Slot& slot, int result) noexcept {
  if (result < 0) {
    return FinishError(slot, ErrnoToNbdError(-result, slot.req.type, slot.req.flags));
  }
  switch (slot.req.type) {
    case kCmdRead:
      return FinishRead(slot);
    case kCmdBlockStatus:
      return FinishBlockStatusContext(slot);
    default:
      return FinishOk(slot);
  }
}

void Transmission::FinishOk(Slot& slot) noexcept {
  AppendSimpleReply(slot.reply_bytes, slot.req.handle, 0);
  slot.iov.push_back({slot.reply_bytes.data(), slot.reply_bytes.size()});
  sink_.SendReply(slot);
}

void Transmission::FinishError(Slot& slot, uint32_t nbd_error) noexcept {
  // READ and BLOCK_STATUS answer in chunks once structured replies are on; every other
  // command keeps simple replies, which the spec allows.
  const bool chunked =
      neg_.structured_replies && (slot.req.type == kCmdRead || slot.req.type == kCmdBlockStatus);
  size_t start = slot.reply_bytes.size();
  if (chunked) {
    AppendErrorChunk(slot.reply_bytes, slot.req.handle, nbd_error);
  } else {
    slot.reply_bytes.resize(start);  // a simple error reply stands alone
    AppendSimpleReply(slot.reply_bytes, slot.req.handle, nbd_error);
  }
  // Earlier chunks of the same reply (block status of a previous context) go first.
  slot.iov.clear();
  slot.iov.push_back({slot.reply_bytes.data(), slot.reply_bytes.size()});
  sink_.SendReply(slot);
}

void Transmission::FinishRead(Slot& slot) noexcept {
  const Request& r = slot.req;
  Bytes& hdr = slot.reply_bytes;
  uint8_t* data = slot.data.data();
  if (!neg_.structured_replies) {
    AppendSimpleReply(hdr, r.handle, 0);
    slot.iov.push_back({hdr.data(), hdr.size()});
    if (r.length) slot.iov.push_back({data, r.length});
    return sink_.SendReply(slot);
  }
  if (r.length == 0) {
    AppendNoneChunk(hdr, r.handle);
    slot.iov.push_back({hdr.data(), hdr.size()});
    return sink_.SendReply(slot);
  }
  if ((r.flags & kCmdFlagDf) || r.length < kHoleGranularity) {
    AppendDataChunkHeader(hdr, kReplyFlagDone, r.handle, r.offset, r.length);
    slot.iov.push_back({hdr.data(), hdr.size()});
    slot.iov.push_back({data, r.length});
    return sink_.SendReply(slot);
  }
  // Split into runs of data and of all-zero blocks; zero runs travel as hole chunks. Pass 1
  // sizes the header bytes so that pointers into them stay valid in pass 2.
  struct Run {
    uint32_t off, len;
    bool hole;
  };
  size_t n_runs = 0;
  auto for_each_run = [&](auto&& f) {
    uint32_t run_start = 0;
    bool run_hole = false;
    for (uint32_t off = 0; off < r.length; off += kHoleGranularity) {
      uint32_t len = std::min<uint32_t>(kHoleGranularity, r.length - off);
      bool hole = IsZero(data + off, len);
      if (off == 0) {
        run_hole = hole;
      } else if (hole != run_hole) {
        f(Run{run_start, off - run_start, run_hole});
        run_start = off;
        run_hole = hole;
      }
    }
    f(Run{run_start, r.length - run_start, run_hole});
  };
  for_each_run([&](const Run&) { ++n_runs; });
  hdr.reserve(n_runs * 32);
  size_t i = 0;
  for_each_run([&](const Run& run) {
    uint16_t flags = ++i == n_runs ? kReplyFlagDone : 0;
    size_t before = hdr.size();
    if (run.hole) {
      AppendHoleChunk(hdr, flags, r.handle, r.offset + run.off, run.len);
    } else {
      AppendDataChunkHeader(hdr, flags, r.handle, r.offset + run.off, run.len);
    }
    // Record (header offset, length) now; converted to pointers after hdr stops growing.
    slot.iov.push_back({reinterpret_cast<void*>(before), hdr.size() - before});
    if (!run.hole) slot.iov.push_back({data + run.off, run.len});
  });
  for (auto& v : slot.iov) {
    uintptr_t base = reinterpret_cast<uintptr_t>(v.iov_base);
    bool in_data = base >= reinterpret_cast<uintptr_t>(data) &&
                   base < reinterpret_cast<uintptr_t>(data) + r.length;
    if (!in_data) v.iov_base = hdr.data() + base;
  }
  sink_.SendReply(slot);
}

void Transmission::StartBlockStatus(Slot& slot) noexcept {
  slot.extents_.clear();
  const Request& r = slot.req;
  export_->BlockStatus(neg_.meta_contexts[slot.context_pos_], r.offset, r.length,
                       r.flags & kCmdFlagReqOne, slot.extents_, slot);
}

void Transmission::FinishBlockStatusContext(Slot& slot) noexcept {
  const Request& r = slot.req;
  // Clamp what the export said to the request: no zero-length extents, nothing past the
  // requested range, one extent with REQ_ONE.
  uint64_t covered = 0;
  size_t n = 0;
  for (const Extent& e : slot.extents_) {
    if (covered >= r.length) break;
    if (e.length == 0) continue;
    uint64_t len = std::min<uint64_t>(e.length, r.length - covered);
    slot.extents_[n++] = Extent{len, e.flags};
    covered += len;
    if (r.flags & kCmdFlagReqOne) break;
  }
  if (n == 0) return FinishError(slot, kEIO);  // the export broke its contract
  size_t ctx = neg_.meta_contexts[slot.context_pos_];
  bool last = slot.context_pos_ + 1 == neg_.meta_contexts.size();
  Bytes& hdr = slot.reply_bytes;
  AppendChunkHeader(hdr, last ? kReplyFlagDone : 0, kReplyTypeBlockStatus, r.handle,
                    uint32_t(4 + 8 * n));
  uint8_t b[8];
  Put32(b, ContextWireId(ctx));
  hdr.insert(hdr.end(), b, b + 4);
  for (size_t i = 0; i < n; ++i) {
    Put32(b, uint32_t(slot.extents_[i].length));
    Put32(b + 4, slot.extents_[i].flags);
    hdr.insert(hdr.end(), b, b + 8);
  }
  if (!last) {
    ++slot.context_pos_;
    return StartBlockStatus(slot);
  }
  slot.iov.push_back({hdr.data(), hdr.size()});
  sink_.SendReply(slot);
}

}  // namespace blocksnap::nbd
