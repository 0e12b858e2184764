// VolumeExport: one connection's view of a volume as an nbd::Export, doing the file I/O on
// the connection's io_uring loop. THE place where volume bytes are read and mutated by NBD:
// every write/trim/zero passes BeginMutation (the snapshot layer's hook: dirty tracking,
// copy-before-write) before its SQE is issued, and every read passes the hook's BeforeRead
// (restore: fill chunks that are not local yet from the chunk store).
//
// All connections to a volume share the Volume's one fd, hence one page cache: a FLUSH
// (fdatasync) on any connection covers writes completed on all, which makes CAN_MULTI_CONN
// honest.
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "io/event_loop.h"
#include "io/volume_bound.h"
#include "io/write_hook.h"
#include "nbd/export.h"
#include "volume/volume.h"

namespace blocksnap::io {

class VolumeExport final : public nbd::Export, public VolumeBoundExport {
 public:
  // Writes (without FUA) of at most inline_write_max bytes are done with pwrite on the loop
  // thread rather than through io_uring (see Issue); 0 sends every write through the ring.
  // open_connections: the server's count of open NBD connections (large reads go to
  // io_uring's workers only while it is below the number of cores); nullptr = always.
  VolumeExport(std::shared_ptr<Volume> volume, EventLoop& loop,
               std::shared_ptr<VolumeWriteHook> hook, uint64_t inline_write_max,
               const std::atomic<size_t>* open_connections = nullptr);
  ~VolumeExport() override;

  const Volume& volume() const { return *volume_; }
  uint64_t volume_id() const override { return volume_->id(); }
  size_t in_flight() const { return ops_.size() - free_.size(); }

  const nbd::ExportInfo& info() const override { return info_; }
  void Read(uint64_t offset, std::span<uint8_t> buf, nbd::Completion& done) noexcept override;
  void Write(uint64_t offset, std::span<const uint8_t> data, bool fua,
             nbd::Completion& done) noexcept override;
  void Flush(nbd::Completion& done) noexcept override;
  void Trim(uint64_t offset, uint64_t length, bool fua, nbd::Completion& done) noexcept override;
  void Zero(uint64_t offset, uint64_t length, nbd::ZeroFlags flags,
            nbd::Completion& done) noexcept override;
  void Cache(uint64_t offset, uint64_t length, nbd::Completion& done) noexcept override;
  void BlockStatus(size_t context, uint64_t offset, uint64_t length, bool one,
                   std::vector<nbd::Extent>& out, nbd::Completion& done) noexcept override;

 private:
  enum class Stage { kRead, kWrite, kFlush, kPunch, kZeroRange, kWriteZeroes, kSync, kCache };

  // One file operation in flight: a pooled IoOp that steps through its stages.
  struct FileOp final : IoOp, HookWaiter {
    VolumeExport* owner = nullptr;
    nbd::Completion* done = nullptr;
    Stage stage = Stage::kRead;
    uint8_t* buf = nullptr;  // kRead/kWrite
    uint64_t offset = 0, length = 0, pos = 0;
    bool fua = false, fast = false;
    bool advisory = false;  // TRIM: may do nothing where the file system cannot punch holes
    bool hooked = false;    // BeforeWrite was called: AfterWrite is owed at Finish
    void OnCqe(int res) noexcept override;
    void Proceed(int res) noexcept override;
  };

  FileOp* Acquire(nbd::Completion& done, Stage stage, uint64_t offset, uint64_t length);
  void Issue(FileOp& op) noexcept;          // queues the SQE of op's current stage (or writes)
  void BeginMutation(FileOp& op) noexcept;  // the write-path seam, then Issue
  void Step(FileOp& op, int res) noexcept;  // a CQE arrived for op
  void Finish(FileOp& op, int res) noexcept;

  std::shared_ptr<Volume> volume_;
  EventLoop& loop_;
  std::shared_ptr<VolumeWriteHook> hook_;
  const uint64_t inline_write_max_;
  const bool inline_reads_;  // the file system cannot read without blocking: pread inline
  const std::atomic<size_t>* const open_connections_;  // see the constructor
  const size_t cores_;
  nbd::ExportInfo info_;
  std::vector<std::unique_ptr<FileOp>> ops_;
  std::vector<FileOp*> free_;
  // The file system answered a hole punch with EOPNOTSUPP: later TRIMs (advisory) succeed at
  // once, without the write hook, since they change nothing.
  bool punch_unsupported_ = false;
};

}  // namespace blocksnap::io
