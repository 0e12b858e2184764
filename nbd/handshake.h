// Fixed-newstyle handshake as a sans-I/O state machine.
//
// The transport feeds whatever bytes it received (Feed) and sends whatever the machine
// produced (TakeOutput) until state() leaves kNegotiating: kTransmission hands over the
// opened export and what was negotiated; kClosed means drop the connection (after sending
// the remaining output). No I/O, no clock, no logging above debug: the transport owns the
// socket and the handshake timeout.
//
// Output is bounded: one Feed stops handling options once its output reaches max_output
// (an option's replies are never split, so one LIST may overshoot it), and keeps the rest of
// the input. stalled() then says that complete options are still waiting: the transport
// sends what it took, and calls Resume() when its own send queue has drained, before it
// receives more. A client that pipelines thousands of options and reads nothing thus costs
// the server one bounded batch of replies, not one per option.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nbd/export.h"

namespace blocksnap::nbd {

// What the handshake settled, read by the transmission phase.
struct Negotiated {
  std::string export_name;
  bool structured_replies = false;
  bool no_zeroes = false;
  // The client asked for NBD_INFO_BLOCK_SIZE, so it promised to honour the minimum block
  // size: misaligned requests are then refused (clients that did not may send any size).
  bool block_size_agreed = false;
  std::vector<size_t> meta_contexts;  // selected indices into Export::MetaContexts()
};

class Handshake {
 public:
  enum class State { kNegotiating, kTransmission, kClosed };

  // Output one Feed produces before it stops handling options.
  static constexpr size_t kDefaultMaxOutput = 64 << 10;

  // The catalog must outlive the handshake. The greeting is queued at once.
  explicit Handshake(ExportCatalog& catalog, size_t max_output = kDefaultMaxOutput);

  // Consumes received bytes: handles every complete option until the output reaches
  // max_output (see stalled()). Bytes that arrive after the handshake ended are kept for the
  // transmission phase (TakeLeftover).
  void Feed(std::string_view data);
  // Handles options already received, as Feed with no new bytes.
  void Resume() { Feed({}); }
  // True when the last Feed stopped at the output bound with input left over: call Resume()
  // once the output has been sent, and feed no more bytes until then.
  bool stalled() const { return stalled_; }
  // Bytes to send, in order; empties the queue.
  std::string TakeOutput() { return std::exchange(out_, {}); }
  bool has_output() const { return !out_.empty(); }

  State state() const { return state_; }
  // Why the handshake closed (for the transport's log), empty otherwise.
  const std::string& close_reason() const { return close_reason_; }

  // Valid in kTransmission.
  std::unique_ptr<Export> TakeExport() { return std::move(export_); }
  const Negotiated& negotiated() const { return neg_; }
  std::string TakeLeftover() { return std::exchange(in_, {}); }

 private:
  // Handles one complete message from in_ at in_pos_; false when more bytes are needed.
  bool Step();
  void HandleOption(uint32_t option, std::string_view data);
  void HandleExportName(std::string_view data);
  void HandleInfoOrGo(uint32_t option, std::string_view data);
  void HandleList(std::string_view data);
  void HandleMetaContext(uint32_t option, std::string_view data);
  // False when exp, opened for `name`, no longer lists the contexts SET_META_CONTEXT chose
  // for it at the same positions (a snapshot was deleted in between, say): their ids, which
  // the client holds, would then name other contexts.
  bool MetaContextsStillMatch(const Export& exp, std::string_view name) const;
  void Reply(uint32_t option, uint32_t type, std::string_view data = {});
  void ReplyError(uint32_t option, uint32_t type, std::string_view message);
  void Close(std::string reason);

  ExportCatalog& catalog_;
  const size_t max_output_;
  State state_ = State::kNegotiating;
  bool got_client_flags_ = false;
  bool stalled_ = false;
  std::string in_;
  size_t in_pos_ = 0;  // in_[0, in_pos_) is consumed; compacted once per Feed
  std::string out_;
  std::string close_reason_;
  Negotiated neg_;
  std::string meta_export_;              // the export SET_META_CONTEXT applied to
  std::vector<std::string> meta_names_;  // the contexts it chose, as neg_.meta_contexts
  std::unique_ptr<Export> export_;
};

}  // namespace blocksnap::nbd
