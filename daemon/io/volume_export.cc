#include "io/volume_export.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <thread>

namespace blocksnap::io {
namespace {

// Zeroes written when the file system cannot zero a range with fallocate.
constexpr size_t kZeroBufSize = 1 << 20;
alignas(4096) const uint8_t kZeroBuf[kZeroBufSize] = {};

// Upper bound of extents per BLOCK_STATUS answer; the client asks again for the rest.
constexpr size_t kMaxExtents = 1024;

// Reads at least this large are copied by an io_uring worker thread (IOSQE_ASYNC), even
// from the page cache, while fewer NBD connections are open than there are cores: the copy
// of one large read then overlaps the loop's sends and other requests on an idle core, as a
// thread-per-request server spreads one connection over the cores. 1 MiB sequential reads,
// one connection: +5-7% on tmpfs and ext4. With as many busy loops as cores there is no idle
// core, and the hand-off only adds context switches: 4 connections on tmpfs, +7-12% without
// it, and no change on ext4 (docs/BENCHMARKS.md). Below this size the hand-off (two context
// switches) costs more than the copy it moves.
constexpr uint64_t kOffloadReadMin = 256 << 10;

bool NotSupported(int res) {
  return res == -EOPNOTSUPP || res == -ENOTSUP;
}

// True when the file system can read without blocking (RWF_NOWAIT): then io_uring serves
// cached reads at submission and only cache misses go to its worker threads. Without it
// (tmpfs, for one) every read would be handed to a worker.
bool CanReadNowait(int fd) {
  char byte;
  iovec iov{&byte, 1};
  return !(::preadv2(fd, &iov, 1, 0, RWF_NOWAIT) < 0 && NotSupported(-errno));
}

}  // namespace

VolumeExport::VolumeExport(std::shared_ptr<Volume> volume, EventLoop& loop,
                           std::shared_ptr<VolumeWriteHook> hook, uint64_t inline_write_max,
                           const std::atomic<size_t>* open_connections)
    : volume_(std::move(volume)),
      loop_(loop),
      hook_(std::move(hook)),
      inline_write_max_(inline_write_max),
      inline_reads_(!CanReadNowait(volume_->fd())),
      open_connections_(open_connections),
      cores_(std::max(1u, std::thread::hardware_concurrency())) {
  info_.size = volume_->size();
  info_.can_multi_conn = true;
  info_.block_sizes.preferred =
      uint32_t(std::clamp<uint64_t>(volume_->chunk_size(), 4096, nbd::kMaxPayload));
  info_.description = "blocksnap volume " + volume_->record().IdString();
}

VolumeExport::~VolumeExport() {
  assert(in_flight() == 0);
}

VolumeExport::FileOp* VolumeExport::Acquire(nbd::Completion& done, Stage stage, uint64_t offset,
                                            uint64_t length) {
  if (free_.empty()) {
    ops_.push_back(std::make_unique<FileOp>());
    ops_.back()->owner = this;
    free_.push_back(ops_.back().get());
  }
  FileOp* op = free_.back();
  free_.pop_back();
  op->done = &done;
  op->stage = stage;
  op->buf = nullptr;
  op->offset = offset;
  op->length = length;
  op->pos = 0;
  op->fua = op->fast = op->advisory = false;
  op->hooked = false;
  return op;
}

void VolumeExport::Finish(FileOp& op, int res) noexcept {
  if (op.hooked) {
    op.hooked = false;
    hook_->AfterWrite(op.offset, op.length);
  }
  nbd::Completion* done = op.done;
  free_.push_back(&op);
  done->Complete(res < 0 ? res : 0);
}

void VolumeExport::Read(uint64_t offset, std::span<uint8_t> buf, nbd::Completion& done) noexcept {
  if (volume_->deleted()) return done.Complete(-ESHUTDOWN);
  FileOp* op = Acquire(done, Stage::kRead, offset, buf.size());
  op->buf = buf.data();
  if (!hook_) return Issue(*op);
  int r = hook_->BeforeRead(op->offset, op->length, *op);
  if (r == kHookReady) return Issue(*op);
  if (r < 0) return Finish(*op, r);
  // kHookDeferred: Proceed() resumes the read on this loop.
}

void VolumeExport::Write(uint64_t offset, std::span<const uint8_t> data, bool fua,
                         nbd::Completion& done) noexcept {
  if (volume_->deleted()) return done.Complete(-ESHUTDOWN);
  FileOp* op = Acquire(done, Stage::kWrite, offset, data.size());
  op->buf = const_cast<uint8_t*>(data.data());  // only ever written from
  op->fua = fua;
  BeginMutation(*op);
}

void VolumeExport::Flush(nbd::Completion& done) noexcept {
  if (volume_->deleted()) return done.Complete(-ESHUTDOWN);
  Issue(*Acquire(done, Stage::kFlush, 0, 0));
}

void VolumeExport::Trim(uint64_t offset, uint64_t length, bool fua,
                        nbd::Completion& done) noexcept {
  if (volume_->deleted()) return done.Complete(-ESHUTDOWN);
  // TRIM is advisory: where holes cannot be punched it does nothing. It then changes no byte,
  // so it needs no dirty mark either and skips the hook.
  if (punch_unsupported_) return done.Complete(0);
  FileOp* op = Acquire(done, Stage::kPunch, offset, length);
  op->fua = fua;
  op->advisory = true;
  BeginMutation(*op);
}

void VolumeExport::Zero(uint64_t offset, uint64_t length, nbd::ZeroFlags flags,
                        nbd::Completion& done) noexcept {
  if (volume_->deleted()) return done.Complete(-ESHUTDOWN);
  // Without NO_HOLE a punched hole is the cheapest way to read back zeroes; with it the
  // range must stay allocated, which ZERO_RANGE does.
  FileOp* op = Acquire(done, flags.no_hole ? Stage::kZeroRange : Stage::kPunch, offset, length);
  op->fua = flags.fua;
  op->fast = flags.fast;
  BeginMutation(*op);
}

void VolumeExport::Cache(uint64_t offset, uint64_t length, nbd::Completion& done) noexcept {
  if (volume_->deleted()) return done.Complete(-ESHUTDOWN);
  Issue(*Acquire(done, Stage::kCache, offset, length));
}

void VolumeExport::BeginMutation(FileOp& op) noexcept {
  if (!hook_) return Issue(op);
  op.hooked = true;
  int r = hook_->BeforeWrite(op.offset, op.length, op);
  if (r == kHookReady) return Issue(op);
  if (r < 0) return Finish(op, r);
  // kHookDeferred: Proceed() resumes the op on this loop.
}

void VolumeExport::FileOp::Proceed(int res) noexcept {
  FileOp* self = this;
  if (res == kHookRetry) {
    // A snapshot instant is being fixed while the write waited (write_hook.h). It leaves the
    // hook at once, from the caller's thread (hooks are thread-safe, and the op is parked: no
    // loop touches it until the post below runs), so that the pause does not also wait for
    // this loop to wake up. Then it goes through the whole hook again, on its loop, and lands
    // after the instant with its chunk tracked there.
    hooked = false;
    owner->hook_->AfterWrite(offset, length);
    return owner->loop_.Post([self] { self->owner->BeginMutation(*self); });
  }
  owner->loop_.Post([self, res] {
    if (res < 0) return self->owner->Finish(*self, res);
    self->owner->Issue(*self);
  });
}

void VolumeExport::Issue(FileOp& op) noexcept {
  const bool offload =
      op.stage == Stage::kRead && op.length - op.pos >= kOffloadReadMin &&
      (!open_connections_ || open_connections_->load(std::memory_order_relaxed) < cores_);
  if (op.stage == Stage::kRead && inline_reads_ && !offload) {
    // The ring would hand this read to a worker thread that then blocks exactly as this
    // thread does (see CanReadNowait); skipping the hand-off saves two context switches.
    ssize_t n =
        ::pread(volume_->fd(), op.buf + op.pos, op.length - op.pos, off_t(op.offset + op.pos));
    return Step(op, n < 0 ? -errno : int(n));
  }
  if (op.stage == Stage::kWrite && !op.fua && op.length <= inline_write_max_) {
    // Buffered writes to a regular file are punted by io_uring to io-wq workers that it
    // serialises per inode (ext4 and tmpfs cannot write buffered without blocking), so one
    // worker thread ends up doing every write of the volume plus a wake-up each. A plain
    // pwrite on the loop thread costs a page-cache copy instead; the loop blocks only
    // where the kernel throttles dirty pages, which throttles the writer either way.
    ssize_t n =
        ::pwrite(volume_->fd(), op.buf + op.pos, op.length - op.pos, off_t(op.offset + op.pos));
    return Step(op, n < 0 ? -errno : int(n));
  }
  io_uring_sqe* sqe = loop_.ring().Sqe(&op);
  if (!sqe) return Finish(op, -EAGAIN);
  const int fd = volume_->fd();
  const uint64_t off = op.offset + op.pos;
  const uint64_t left = op.length - op.pos;
  switch (op.stage) {
    case Stage::kRead:
      io_uring_prep_read(sqe, fd, op.buf + op.pos, unsigned(left), off);
      if (offload) sqe->flags |= IOSQE_ASYNC;
      break;
    case Stage::kWrite:
      io_uring_prep_write(sqe, fd, op.buf + op.pos, unsigned(left), off);
      if (op.fua) sqe->rw_flags = RWF_DSYNC;  // FUA: durable when acknowledged
      break;
    case Stage::kWriteZeroes:
      io_uring_prep_write(sqe, fd, kZeroBuf, unsigned(std::min<uint64_t>(left, kZeroBufSize)), off);
      break;
    case Stage::kFlush:
    case Stage::kSync:
      io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
      break;
    case Stage::kPunch:
      io_uring_prep_fallocate(sqe, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, left);
      break;
    case Stage::kZeroRange:
      io_uring_prep_fallocate(sqe, fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, off, left);
      break;
    case Stage::kCache:
      io_uring_prep_fadvise(sqe, fd, off, off_t(left), POSIX_FADV_WILLNEED);
      break;
  }
}

void VolumeExport::FileOp::OnCqe(int res) noexcept {
  owner->Step(*this, res);
}

void VolumeExport::Step(FileOp& op, int res) noexcept {
  if (res == -EINTR || res == -EAGAIN) return Issue(op);
  switch (op.stage) {
    case Stage::kRead:
      if (res < 0) return Finish(op, res);
      if (res == 0) {
        // Past the end of a shorter file: a sparse file reads back zeroes.
        std::memset(op.buf + op.pos, 0, op.length - op.pos);
        return Finish(op, 0);
      }
      op.pos += uint64_t(res);
      return op.pos < op.length ? Issue(op) : Finish(op, 0);
    case Stage::kWrite:
    case Stage::kWriteZeroes:
      if (res < 0) return Finish(op, res);
      if (res == 0) return Finish(op, -EIO);
      op.pos += uint64_t(res);
      if (op.pos < op.length) return Issue(op);
      if (op.stage == Stage::kWriteZeroes && op.fua) {
        op.stage = Stage::kSync;
        return Issue(op);
      }
      return Finish(op, 0);
    case Stage::kPunch:
    case Stage::kZeroRange:
      if (NotSupported(res)) {
        if (op.stage == Stage::kPunch) punch_unsupported_ = true;
        // A TRIM that cannot punch leaves the bytes as they are: writing zeroes instead would
        // turn an advisory hint into a full write of the range (and dirty every chunk of it).
        // The hook, already passed, marked the range dirty: a superset, which only costs the
        // next snapshot a copy of those chunks.
        if (op.advisory) return Finish(op, 0);
        // WRITE_ZEROES the file system cannot do in one step: FAST_ZERO says fail, else
        // write zeroes.
        if (op.fast) return Finish(op, -ENOTSUP);
        op.stage = Stage::kWriteZeroes;
        return Issue(op);
      }
      if (res < 0) return Finish(op, res);
      if (op.fua) {
        op.stage = Stage::kSync;
        return Issue(op);
      }
      return Finish(op, 0);
    case Stage::kFlush:
    case Stage::kSync:
    case Stage::kCache:
      return Finish(op, res);
  }
}

void VolumeExport::BlockStatus(size_t, uint64_t offset, uint64_t length, bool one,
                               std::vector<nbd::Extent>& out, nbd::Completion& done) noexcept {
  // base:allocation from SEEK_DATA/SEEK_HOLE. lseek has no io_uring op; it only walks the
  // extent tree, so it runs inline on the loop.
  const int fd = volume_->fd();
  const uint64_t end = offset + length;
  uint64_t pos = offset;
  while (pos < end && out.size() < kMaxExtents) {
    off_t data = ::lseek(fd, off_t(pos), SEEK_DATA);
    if (data < 0 && errno != ENXIO) return done.Complete(-errno);
    if (data < 0 || uint64_t(data) > pos) {
      // ENXIO: no data after pos, the rest of the file is a hole.
      uint64_t hole_end = data < 0 ? end : std::min<uint64_t>(uint64_t(data), end);
      // [restore] A hole the hook still fills from the store (a restored volume that is not
      // hydrated yet) reads as data: report it as data, never as zeros.
      while (pos < hole_end && out.size() < kMaxExtents) {
        bool unfilled = false;
        uint64_t n = hook_ ? hook_->Unfilled(pos, hole_end - pos, &unfilled) : hole_end - pos;
        if (n == 0 || n > hole_end - pos) n = hole_end - pos;
        const uint32_t flags = unfilled ? 0 : (nbd::kStateHole | nbd::kStateZero);
        if (!out.empty() && out.back().flags == flags)
          out.back().length += n;
        else
          out.push_back({n, flags});
        pos += n;
        if (one) break;
      }
    } else {
      off_t hole = ::lseek(fd, off_t(pos), SEEK_HOLE);
      if (hole < 0) return done.Complete(-errno);
      uint64_t data_end = std::min<uint64_t>(uint64_t(hole), end);
      if (data_end <= pos) data_end = end;  // defensive: never loop without progress
      out.push_back({data_end - pos, 0});
      pos = data_end;
    }
    if (one) break;
  }
  done.Complete(0);
}

}  // namespace blocksnap::io
