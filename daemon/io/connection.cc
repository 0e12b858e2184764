#include "io/connection.h"

#include <limits.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <cassert>
#include <cstring>

#include "io/volume_bound.h"

namespace blocksnap::io {
namespace {

constexpr size_t kMaxIov = IOV_MAX;
// While handshake replies this large are unsent, stop reading and handling more options
// (the handshake itself stops each batch at nbd::Handshake::kDefaultMaxOutput).
constexpr size_t kMaxPendingHandshakeOutput = 1 << 20;

// Request bytes a slot holds while in flight (for the per-connection budget).
size_t SlotBytes(const nbd::Request& r) {
  return (r.type == nbd::kCmdRead || r.type == nbd::kCmdWrite) ? r.length : 0;
}

}  // namespace

Connection::Connection(ConnectionHost& host, EventLoop& loop, UniqueFd fd, std::string peer,
                       Clock::time_point handshake_deadline)
    : host_(host),
      loop_(loop),
      fd_(std::move(fd)),
      peer_(std::move(peer)),
      deadline_(handshake_deadline),
      in_(kRecvBufferSize) {
  recv_op_.c = send_op_.c = this;
  recv_op_.fn = &Connection::OnRecv;
  send_op_.fn = &Connection::OnSend;
}

Connection::~Connection() {
  assert(!recv_inflight_ && !send_inflight_);
  loop_.CancelDeferred(this);
}

void Connection::Start() noexcept {
  handshake_.emplace(host_.catalog());
  raw_next_ = handshake_->TakeOutput();
  ArmSend();
  ArmRecv();
}

void Connection::OnTick(Clock::time_point now) noexcept {
  if (!attached() && !closing_ && now >= deadline_) Close("handshake timed out");
}

// --- Receiving ---

bool Connection::Paused() const {
  size_t in_flight = slots_.size() - free_slots_.size();
  return in_flight >= kMaxInFlight || inflight_bytes_ >= kMaxInFlightBytes;
}

void Connection::ArmRecv() noexcept {
  if (closing_ || drain_then_close_ || recv_inflight_) return;
  void* dst;
  size_t len;
  if (payload_slot_) {
    dst = payload_slot_->data.data() + payload_got_;
    len = payload_slot_->req.length - payload_got_;
  } else {
    if (tx_ && Paused()) return;
    if (!tx_) {
      // Options already received are handled first (OnSend resumes them), and no more are
      // read while their replies are unsent.
      if (handshake_->stalled()) return;
      if (PendingHandshakeOutput() > kMaxPendingHandshakeOutput) return;
    }
    if (in_begin_ == in_end_) in_begin_ = in_end_ = 0;
    if (in_end_ == in_.size() || in_begin_ > in_.size() / 2) {
      // Move the partial message to the front so the next recv has room.
      std::memmove(in_.data(), in_.data() + in_begin_, in_end_ - in_begin_);
      in_end_ -= in_begin_;
      in_begin_ = 0;
    }
    dst = in_.data() + in_end_;
    len = in_.size() - in_end_;
    // Cannot happen (complete requests are consumed before reading more), but a zero-length
    // receive would look like EOF.
    if (len == 0) return Close("receive buffer full");
  }
  io_uring_sqe* sqe = loop_.ring().Sqe(&recv_op_);
  if (!sqe) return Close("io_uring submission queue full");
  io_uring_prep_recv(sqe, fd_.get(), dst, len, 0);
  recv_inflight_ = true;
}

void Connection::OnRecv(int res) noexcept {
  recv_inflight_ = false;
  if (closing_) {
    if (payload_slot_) {
      ReleaseSlot(*payload_slot_);
      payload_slot_ = nullptr;
    }
    return MaybeFinish();
  }
  if (res == 0) return Close("client disconnected");
  if (res < 0) {
    if (res == -EINTR || res == -EAGAIN) return ArmRecv();
    return Close(std::string("receive failed: ") + std::strerror(-res));
  }
  if (payload_slot_) {
    payload_got_ += size_t(res);
    if (payload_got_ == payload_slot_->req.length) {
      nbd::Slot* slot = std::exchange(payload_slot_, nullptr);
      Dispatch(*slot);
      ProcessRequests();
    }
  } else {
    in_end_ += size_t(res);
    if (tx_) {
      ProcessRequests();
    } else {
      ProcessHandshake();
    }
  }
  ArmRecv();
}

size_t Connection::PendingHandshakeOutput() const {
  return raw_out_.size() - raw_sent_ + raw_next_.size();
}

void Connection::ProcessHandshake() noexcept {
  // With nothing received this resumes the options a stalled handshake still holds.
  handshake_->Feed(
      std::string_view(reinterpret_cast<char*>(in_.data() + in_begin_), in_end_ - in_begin_));
  in_begin_ = in_end_ = 0;
  raw_next_ += handshake_->TakeOutput();
  ArmSend();
  switch (handshake_->state()) {
    case nbd::Handshake::State::kNegotiating:
      return;
    case nbd::Handshake::State::kClosed:
      return CloseWhenDrained("handshake ended: " + handshake_->close_reason());
    case nbd::Handshake::State::kTransmission:
      return EnterTransmission();
  }
}

void Connection::EnterTransmission() noexcept {
  std::string leftover = handshake_->TakeLeftover();
  // Fits: the handshake keeps only a partial option between receives and reads no more while
  // stalled, so what follows GO came from the last receive into in_.
  if (leftover.size() > in_.size()) return Close("handshake left too many bytes");
  std::memcpy(in_.data(), leftover.data(), leftover.size());
  in_begin_ = 0;
  in_end_ = leftover.size();
  export_name_ = handshake_->negotiated().export_name;
  auto exp = handshake_->TakeExport();
  // A volume's export or one of its snapshots': the connection counts as the volume's client.
  if (auto* vb = dynamic_cast<const VolumeBoundExport*>(exp.get())) volume_id_ = vb->volume_id();
  tx_ = std::make_unique<nbd::Transmission>(std::move(exp), handshake_->negotiated(), *this);
  handshake_.reset();
  host_.Attached(*this);
  ProcessRequests();
}

nbd::Slot* Connection::AcquireSlot() noexcept {
  if (free_slots_.empty()) {
    slots_.push_back(std::make_unique<nbd::Slot>());
    free_slots_.push_back(slots_.back().get());
  }
  nbd::Slot* s = free_slots_.back();
  free_slots_.pop_back();
  return s;
}

void Connection::ProcessRequests() noexcept {
  while (!closing_ && !drain_then_close_ && !payload_slot_ && !Paused()) {
    size_t avail = in_end_ - in_begin_;
    if (avail < nbd::kRequestHeaderSize) return;
    nbd::Request req;
    if (!nbd::ParseRequestHeader(in_.data() + in_begin_, req)) {
      return Close("bad request magic");
    }
    in_begin_ += nbd::kRequestHeaderSize;
    avail -= nbd::kRequestHeaderSize;
    if (req.type == nbd::kCmdDisc) {
      // The spec: finish what is in flight, then close.
      return CloseWhenDrained("client sent NBD_CMD_DISC");
    }
    nbd::Slot* slot = AcquireSlot();
    slot->req = req;
    inflight_bytes_ += SlotBytes(req);
    if (nbd::PayloadTooLarge(req)) {
      // Refused before allocating; its bytes are not drained, the connection ends.
      tx_->RejectRequest(*slot, nbd::kEINVAL);
      return CloseWhenDrained("write payload larger than the maximum block size");
    }
    uint32_t payload = nbd::PayloadLength(req);
    if (payload > 0) {
      slot->data.Resize(payload);
      size_t n = std::min<size_t>(avail, payload);
      std::memcpy(slot->data.data(), in_.data() + in_begin_, n);
      in_begin_ += n;
      if (n < payload) {
        // The rest goes straight from the socket into the slot.
        payload_slot_ = slot;
        payload_got_ = n;
        return;
      }
    }
    Dispatch(*slot);
  }
}

void Connection::Dispatch(nbd::Slot& slot) noexcept {
  tx_->Handle(slot);
}

void Connection::ReleaseSlot(nbd::Slot& slot) noexcept {
  inflight_bytes_ -= SlotBytes(slot.req);
  if (slot.data.capacity() > kKeepSlotBuffer) {
    // Rare (large I/O): bound what idle slots hold on to.
    size_t retained = 0;
    for (const auto& s : slots_) retained += s->data.capacity();
    if (retained > kMaxRetainedBytes) slot.data.Shrink(0);
  }
  free_slots_.push_back(&slot);
}

// --- Sending ---

void Connection::SendReply(nbd::Slot& slot) noexcept {
  if (closing_) {
    ReleaseSlot(slot);
    return MaybeFinish();
  }
  replies_.Push(slot);
  if (!send_inflight_) loop_.Defer(this);
}

void Connection::ArmSend() noexcept {
  if (send_inflight_ || closing_) return;
  send_iov_.clear();
  if (raw_sent_ == raw_out_.size() && !raw_next_.empty()) {
    // Only now, with no send in flight, may the bytes under the last send's iovec change.
    raw_out_.clear();
    raw_out_.swap(raw_next_);
    raw_sent_ = 0;
  }
  if (raw_sent_ < raw_out_.size()) {
    send_iov_.push_back({raw_out_.data() + raw_sent_, raw_out_.size() - raw_sent_});
  } else {
    replies_.Gather(send_iov_, kMaxIov);
  }
  if (send_iov_.empty()) {
    if (drain_then_close_ && slots_.size() == free_slots_.size()) Close(close_reason_);
    return;
  }
  io_uring_sqe* sqe = loop_.ring().Sqe(&send_op_);
  if (!sqe) return Close("io_uring submission queue full");
  msg_ = {};
  msg_.msg_iov = send_iov_.data();
  msg_.msg_iovlen = send_iov_.size();
  io_uring_prep_sendmsg(sqe, fd_.get(), &msg_, MSG_NOSIGNAL);
  send_inflight_ = true;
}

void Connection::OnSend(int res) noexcept {
  send_inflight_ = false;
  // Not while closing: ArmSend would do nothing, and the connection would never finish.
  if (!closing_ && (res == -EINTR || res == -EAGAIN)) return ArmSend();
  if (res < 0 && !closing_) Close(std::string("send failed: ") + std::strerror(-res));
  if (closing_) {
    // Unsent replies are dropped with the connection.
    DropUnsentReplies();
    return MaybeFinish();
  }
  size_t sent = size_t(res);
  if (raw_sent_ < raw_out_.size()) {
    raw_sent_ += sent;
    if (raw_sent_ == raw_out_.size()) {
      raw_out_.clear();
      raw_sent_ = 0;
    }
  } else {
    replies_.Consume(sent, [this](nbd::Slot& s) { ReleaseSlot(s); });
  }
  ArmSend();
  // Sent replies free slots and budget: a paused connection reads again.
  if (tx_) {
    ProcessRequests();
    ArmRecv();
  } else if (!closing_) {
    if (handshake_->stalled() && PendingHandshakeOutput() <= kMaxPendingHandshakeOutput) {
      ProcessHandshake();  // the next batch of options received earlier
    }
    ArmRecv();
  }
}

// --- Teardown ---

void Connection::DropUnsentReplies() noexcept {
  replies_.Clear([this](nbd::Slot& s) { ReleaseSlot(s); });
}

void Connection::CloseWhenDrained(const std::string& why) noexcept {
  if (drain_then_close_ || closing_) return;
  drain_then_close_ = true;
  close_reason_ = why;
  ArmSend();  // closes at once when nothing is left to send
}

void Connection::Drain(const std::string& why) noexcept {
  if (!attached()) return Close(why);
  CloseWhenDrained(why);
}

void Connection::Close(const std::string& why) noexcept {
  if (closing_) return;
  closing_ = true;
  close_reason_ = why;
  ::shutdown(fd_.get(), SHUT_RDWR);
  if (recv_inflight_) {
    // The shutdown already wakes the receive; cancelling covers unix sockets too.
    if (io_uring_sqe* sqe = loop_.ring().Sqe(nullptr)) {
      io_uring_prep_cancel(sqe, &recv_op_, 0);
    }
  }
  if (!send_inflight_) DropUnsentReplies();
  // A payload being received into its slot is released once that receive has completed:
  // the kernel may still write into the slot's buffer until then.
  if (payload_slot_ && !recv_inflight_) {
    ReleaseSlot(*payload_slot_);
    payload_slot_ = nullptr;
  }
  MaybeFinish();
}

void Connection::MaybeFinish() noexcept {
  if (!closing_ || finished_ || recv_inflight_ || send_inflight_) return;
  if (slots_.size() != free_slots_.size()) return;  // export operations still running
  finished_ = true;
  host_.Finished(*this);
}

}  // namespace blocksnap::io
