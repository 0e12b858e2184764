#include "nbd/export.h"

namespace blocksnap::nbd {

uint16_t TransmissionFlags(const ExportInfo& info, bool structured_replies) {
  uint16_t f = kTxHasFlags;
  if (info.read_only) f |= kTxReadOnly;
  if (info.can_flush) f |= kTxSendFlush;
  if (info.can_fua && !info.read_only) f |= kTxSendFua;
  if (info.rotational) f |= kTxRotational;
  if (info.can_trim && !info.read_only) f |= kTxSendTrim;
  if (info.can_zero && !info.read_only) f |= kTxSendWriteZeroes;
  if (info.can_zero && info.can_fast_zero && !info.read_only) f |= kTxSendFastZero;
  // DF only means something with structured replies.
  if (structured_replies) f |= kTxSendDf;
  if (info.can_multi_conn) f |= kTxCanMultiConn;
  if (info.can_cache) f |= kTxSendCache;
  return f;
}

}  // namespace blocksnap::nbd
