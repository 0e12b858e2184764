#include "nbd/errors.h"

#include <cerrno>

#include "nbd/wire.h"

namespace blocksnap::nbd {

uint32_t ErrnoToNbdError(int err, uint16_t type, uint16_t flags) {
  switch (err) {
    case 0:
      return 0;
    case EPERM:
    case EROFS:
    case EACCES:
      return kEPERM;
    case EIO:
      return kEIO;
    case ENOMEM:
      return kENOMEM;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
      return kENOSPC;
    case EINVAL:
      return kEINVAL;
    case EOVERFLOW:
      return kEOVERFLOW;
    case ESHUTDOWN:
      return kESHUTDOWN;
#if EOPNOTSUPP != ENOTSUP
    case EOPNOTSUPP:
#endif
    case ENOTSUP:
      // Only a FAST_ZERO request may be answered "not supported"; a client that did not ask
      // for it would not expect the code, so anything else sees EINVAL.
      return (type == kCmdWriteZeroes && (flags & kCmdFlagFastZero)) ? kENOTSUP : kEINVAL;
    default:
      return kEIO;
  }
}

}  // namespace blocksnap::nbd
