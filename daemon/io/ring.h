// Ring: the RAII owner of one io_uring, and IoOp, the target of every completion.
//
// Every SQE's user_data is an IoOp*; the loop calls OnCqe(res) for its CQE. An IoOp must
// stay alive until its CQE arrived (owners count what they have in flight).
#pragma once

#include <liburing.h>

#include <cstdint>

#include "util/status.h"

namespace blocksnap::io {

class IoOp {
 public:
  // res as in cqe->res: >= 0 on success, -errno on failure.
  virtual void OnCqe(int res) noexcept = 0;

 protected:
  ~IoOp() = default;
};

class Ring {
 public:
  static constexpr unsigned kEntries = 1024;

  Ring() = default;
  ~Ring() {
    if (ok_) io_uring_queue_exit(&ring_);
  }
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  Status Init(unsigned entries = kEntries);
  // Makes the calling thread the ring's only submitter; call it on that thread before the
  // first Sqe(). (A no-op on kernels without single-issuer rings.)
  Status EnableOnThisThread();

  // A free SQE bound to op. Submits queued SQEs first when the submission queue is full, so
  // it only fails (nullptr) when the kernel refuses to take any.
  io_uring_sqe* Sqe(IoOp* op) noexcept;

  // Submits and waits for at least one completion (or a signal), then dispatches every
  // ready CQE. Returns a negative errno only on a ring failure.
  int SubmitAndDispatch() noexcept;

  io_uring* raw() { return &ring_; }

 private:
  io_uring ring_{};
  bool ok_ = false;
  bool disabled_ = false;  // created with IORING_SETUP_R_DISABLED, not enabled yet
};

}  // namespace blocksnap::io
