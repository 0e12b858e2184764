#include "io/ring.h"

#include <cerrno>

namespace blocksnap::io {

Status Ring::Init(unsigned entries) {
  io_uring_params params{};
  // The kernel completes socket and file I/O on its own workers; a bigger CQ avoids
  // overflow when many requests finish together.
  params.flags = IORING_SETUP_CQSIZE;
  params.cq_entries = entries * 4;
  int r = io_uring_queue_init_params(entries, &ring_, &params);
  if (r < 0) return FromErrno(-r, "creating io_uring");
  ok_ = true;
  return Status::Ok();
}

io_uring_sqe* Ring::Sqe(IoOp* op) noexcept {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (!sqe) {
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
    if (!sqe) return nullptr;
  }
  io_uring_sqe_set_data(sqe, op);
  return sqe;
}

int Ring::SubmitAndDispatch() noexcept {
  int r = io_uring_submit_and_wait(&ring_, 1);
  if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) return r;
  // Completions may queue new SQEs; they are submitted on the next round.
  io_uring_cqe* cqe;
  while (io_uring_peek_cqe(&ring_, &cqe) == 0) {
    auto* op = static_cast<IoOp*>(io_uring_cqe_get_data(cqe));
    int res = cqe->res;
    // Mark seen before dispatching: an op may destroy itself or its owner.
    io_uring_cqe_seen(&ring_, cqe);
    if (op) op->OnCqe(res);
  }
  return 0;
}

}  // namespace blocksnap::io
