// WriteGate: how the snapshot engine fixes a point in time. Implemented by the I/O layer.
#pragma once

#include <cstdint>

namespace blocksnap {

class WriteGate {
 public:
  virtual ~WriteGate() = default;
  // Stops admitting new write/trim/zero requests to the volume and returns once every one
  // already admitted has completed. "Admitted" starts before the request's BeforeWrite call
  // and ends when its data write has completed, so no BeforeWrite of the volume runs or
  // waits while writes are paused. Reads are not affected. Called from a control thread.
  virtual void PauseWrites(uint64_t volume_id) = 0;
  // Re-admits writes (queued ones proceed).
  virtual void ResumeWrites(uint64_t volume_id) = 0;
};

}  // namespace blocksnap
