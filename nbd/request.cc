#include "nbd/request.h"

namespace blocksnap::nbd {

bool ParseRequestHeader(const uint8_t* p, Request& out) {
  if (Get32(p) != kRequestMagic) return false;
  out.flags = Get16(p + 4);
  out.type = Get16(p + 6);
  out.handle = Get64(p + 8);
  out.offset = Get64(p + 16);
  out.length = Get32(p + 24);
  return true;
}

void EncodeRequestHeader(const Request& r, uint8_t* p) {
  Put32(p, kRequestMagic);
  Put16(p + 4, r.flags);
  Put16(p + 6, r.type);
  Put64(p + 8, r.handle);
  Put64(p + 16, r.offset);
  Put32(p + 24, r.length);
}

namespace {

// Flags each command accepts at all (before checking what was negotiated). FUA is valid
// on every command once advertised: the spec says so because existing clients set it on
// reads and flushes too. Only writes need it; the others ignore it.
uint16_t AllowedFlags(uint16_t type) {
  switch (type) {
    case kCmdRead:
      return kCmdFlagFua | kCmdFlagDf;
    case kCmdWriteZeroes:
      return kCmdFlagFua | kCmdFlagNoHole | kCmdFlagFastZero;
    case kCmdBlockStatus:
      return kCmdFlagFua | kCmdFlagReqOne;
    default:
      return kCmdFlagFua;
  }
}

}  // namespace

uint32_t ValidateRequest(const Request& r, const ExportInfo& info, const Negotiated& neg) {
  const bool writes = r.type == kCmdWrite || r.type == kCmdTrim || r.type == kCmdWriteZeroes;
  switch (r.type) {
    case kCmdRead:
    case kCmdWrite:
    case kCmdFlush:
    case kCmdTrim:
    case kCmdCache:
    case kCmdWriteZeroes:
    case kCmdBlockStatus:
      break;
    default:
      return kEINVAL;  // includes DISC, which the transport handles before validation
  }
  if (r.flags & ~AllowedFlags(r.type)) return kEINVAL;
  if ((r.flags & kCmdFlagFua) && !(TransmissionFlags(info, neg.structured_replies) & kTxSendFua)) {
    return kEINVAL;  // not advertised
  }
  if ((r.flags & kCmdFlagDf) && !neg.structured_replies) return kEINVAL;
  if ((r.flags & kCmdFlagFastZero) && !info.can_fast_zero) return kEINVAL;
  if (writes && info.read_only) return kEPERM;

  switch (r.type) {
    case kCmdFlush:
      if (!info.can_flush) return kEINVAL;
      return (r.offset != 0 || r.length != 0) ? kEINVAL : 0;
    case kCmdTrim:
      if (!info.can_trim) return kEINVAL;
      break;
    case kCmdWriteZeroes:
      if (!info.can_zero) return kEINVAL;
      break;
    case kCmdCache:
      if (!info.can_cache) return kEINVAL;
      break;
    case kCmdBlockStatus:
      if (neg.meta_contexts.empty() || r.length == 0) return kEINVAL;
      break;
    case kCmdRead:
    case kCmdWrite:
      if (r.length > info.block_sizes.maximum) return kEINVAL;
      break;
  }

  // Range: offset + length must not pass the end (computed without overflow).
  if (r.offset > info.size || r.length > info.size - r.offset) {
    return (r.type == kCmdWrite || r.type == kCmdWriteZeroes) ? kENOSPC : kEINVAL;
  }
  if (neg.block_size_agreed) {
    uint32_t min = info.block_sizes.minimum;
    if (r.offset % min != 0 || r.length % min != 0) return kEINVAL;
  }
  return 0;
}

}  // namespace blocksnap::nbd
