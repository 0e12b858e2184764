// Connection: one NBD client on an io_uring loop. Drives the sans-I/O nbd::Handshake, then
// the transmission phase: reads request headers and WRITE payloads, hands them to
// nbd::Transmission (many in flight), and sends replies as they complete, in any order.
//
// Memory is bounded per connection: a fixed receive buffer, at most kMaxInFlight pooled
// request slots and kMaxInFlightBytes of request data; past that the connection stops
// reading until replies drain. Hostile input (bad magic, oversized payload, garbage) closes
// this connection only.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/event_loop.h"
#include "io/reply_queue.h"
#include "nbd/handshake.h"
#include "nbd/transmission.h"
#include "util/unique_fd.h"

namespace blocksnap::io {

class Connection;

// What a connection needs from the loop that owns it.
class ConnectionHost {
 public:
  virtual nbd::ExportCatalog& catalog() noexcept = 0;
  // The handshake finished: the connection serves volume_id() now.
  virtual void Attached(Connection& c) noexcept = 0;
  // The connection is closed and idle (no SQE in flight); the host destroys it later.
  virtual void Finished(Connection& c) noexcept = 0;

 protected:
  ~ConnectionHost() = default;
};

class Connection final : public nbd::ReplySink, private Deferred {
 public:
  static constexpr size_t kRecvBufferSize = 256 * 1024;
  static constexpr size_t kMaxInFlight = 128;
  // Request data in flight before the connection stops reading (one request may overshoot
  // it by up to the 32 MiB maximum).
  static constexpr size_t kMaxInFlightBytes = 32 << 20;
  // Slot buffers up to this size are always kept for reuse; larger ones only while all the
  // connection's slot buffers together stay under kMaxRetainedBytes.
  static constexpr size_t kKeepSlotBuffer = 256 << 10;
  static constexpr size_t kMaxRetainedBytes = 64 << 20;

  using Clock = std::chrono::steady_clock;

  Connection(ConnectionHost& host, EventLoop& loop, UniqueFd fd, std::string peer,
             Clock::time_point handshake_deadline);
  ~Connection();

  void Start() noexcept;
  // Starts tearing down: shuts the socket, cancels the receive, drops unsent replies. The
  // connection reports Finished once every operation in flight has completed.
  void Close(const std::string& why) noexcept;
  // For a server stop: an attached connection reads no more requests, completes and sends
  // the replies of those in flight (the spec: a server SHOULD finish them before it
  // disconnects), then closes; one still in its handshake closes at once. Close() still
  // cuts it short (the server's deadline for clients that do not read their replies).
  void Drain(const std::string& why) noexcept;
  void OnTick(Clock::time_point now) noexcept;

  const std::string& peer() const { return peer_; }
  bool attached() const { return tx_ != nullptr; }
  uint64_t volume_id() const { return volume_id_; }
  const std::string& export_name() const { return export_name_; }
  const std::string& close_reason() const { return close_reason_; }

  void SendReply(nbd::Slot& slot) noexcept override;

 private:
  struct Op final : IoOp {
    Connection* c = nullptr;
    void (Connection::*fn)(int) noexcept = nullptr;
    void OnCqe(int res) noexcept override { (c->*fn)(res); }
  };

  void ArmRecv() noexcept;
  void OnRecv(int res) noexcept;
  // Feeds what was received to the handshake (nothing: resumes a stalled one).
  void ProcessHandshake() noexcept;
  // Handshake bytes not yet sent.
  size_t PendingHandshakeOutput() const;
  void EnterTransmission() noexcept;
  void ProcessRequests() noexcept;
  void Dispatch(nbd::Slot& slot) noexcept;
  nbd::Slot* AcquireSlot() noexcept;
  void ReleaseSlot(nbd::Slot& slot) noexcept;
  bool Paused() const;
  void ArmSend() noexcept;
  // Replies completed in one batch of CQEs go out together, after the batch.
  void RunDeferred() noexcept override { ArmSend(); }
  void OnSend(int res) noexcept;
  void DropUnsentReplies() noexcept;
  void CloseWhenDrained(const std::string& why) noexcept;
  void MaybeFinish() noexcept;

  ConnectionHost& host_;
  EventLoop& loop_;
  UniqueFd fd_;
  const std::string peer_;
  Clock::time_point deadline_;

  std::optional<nbd::Handshake> handshake_;
  std::unique_ptr<nbd::Transmission> tx_;
  uint64_t volume_id_ = 0;
  std::string export_name_;

  // Receiving: bytes land in in_[in_begin_, in_end_) or, for a long WRITE payload, straight
  // into the slot's buffer.
  std::vector<uint8_t> in_;
  size_t in_begin_ = 0, in_end_ = 0;
  nbd::Slot* payload_slot_ = nullptr;
  size_t payload_got_ = 0;
  Op recv_op_;
  bool recv_inflight_ = false;

  // Slots: pooled, reused.
  std::vector<std::unique_ptr<nbd::Slot>> slots_;
  std::vector<nbd::Slot*> free_slots_;
  size_t inflight_bytes_ = 0;

  // Sending: handshake bytes first, then replies in completion order. A send in flight
  // points into raw_out_, so new handshake output goes to raw_next_ and moves over only
  // between sends: appending to raw_out_ could reallocate it under the kernel's feet.
  std::string raw_out_;
  size_t raw_sent_ = 0;
  std::string raw_next_;
  ReplyQueue replies_;
  std::vector<iovec> send_iov_;
  msghdr msg_{};
  Op send_op_;
  bool send_inflight_ = false;

  bool closing_ = false;           // socket shut, waiting for operations to finish
  bool drain_then_close_ = false;  // no more reading; close once every reply is sent
  bool finished_ = false;
  std::string close_reason_;
};

}  // namespace blocksnap::io
