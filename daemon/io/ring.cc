#include "io/ring.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace blocksnap::io {

Status Ring::Init(unsigned entries) {
  io_uring_params params{};
  // The kernel completes socket and file I/O on its own workers; a bigger CQ avoids
  // overflow when many requests finish together.
  params.flags = IORING_SETUP_CQSIZE;
  params.cq_entries = entries * 4;
  // Only the loop's thread ever submits (other threads Post() through an eventfd), so the
  // kernel may run completion work when that thread asks for completions, instead of
  // interrupting it with task-work IPIs (DEFER_TASKRUN needs SINGLE_ISSUER). The ring is
  // created disabled here and enabled by the thread that will own it.
  io_uring_params deferred = params;
  deferred.flags |= IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                    IORING_SETUP_R_DISABLED | IORING_SETUP_SUBMIT_ALL;
  int r = io_uring_queue_init_params(entries, &ring_, &deferred);
  disabled_ = r == 0;
  if (r == -EINVAL) r = io_uring_queue_init_params(entries, &ring_, &params);  // kernel < 6.1
  if (r < 0) return FromErrno(-r, "creating io_uring");
  ok_ = true;
  return Status::Ok();
}

Status Ring::EnableOnThisThread() {
  if (!disabled_) return Status::Ok();
  // liburing 2.3 (Debian 12) has no io_uring_enable_rings(): the register call itself.
  if (::syscall(__NR_io_uring_register, ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0) <
      0)
    return FromErrno(errno, "enabling io_uring");
  disabled_ = false;
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
