// The one errno -> NBD error mapper. Every export error crosses the wire through it.
#pragma once

#include <cstdint>

namespace blocksnap::nbd {

// Maps a host errno (positive) from an export operation to the NBD error sent for command
// `type` with command flags `flags`. Follows the spec's rules: ENOTSUP answers only a
// FAST_ZERO request (else EINVAL), EDQUOT and EFBIG become ENOSPC, EROFS/EACCES become
// EPERM, anything unknown becomes EIO.
uint32_t ErrnoToNbdError(int err, uint16_t type, uint16_t flags);

}  // namespace blocksnap::nbd
