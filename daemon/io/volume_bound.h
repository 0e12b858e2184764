// VolumeBoundExport: what an export of the daemon tells about the volume it belongs to.
//
// nbd/ knows no volumes; a connection asks its export for this interface (a cross-cast) once
// its handshake has ended, and registers under that volume id. Both a volume's own export and
// its snapshot exports ("<volume>@<snapshot>") implement it, so that the volume's client
// count (`volume show`), its client list and a forced delete see every client of its bytes.
#pragma once

#include <cstdint>

namespace blocksnap::io {

class VolumeBoundExport {
 public:
  // The id of the volume whose bytes (live, or a snapshot of them) the export serves.
  virtual uint64_t volume_id() const = 0;

 protected:
  ~VolumeBoundExport() = default;
};

}  // namespace blocksnap::io
