// libFuzzer target: the whole client byte stream of one NBD session, through the sans-I/O
// handshake and then the transmission phase against a MemoryExport.
//
// Checks beyond "no crash": feeding the same stream in 7-byte pieces yields byte-identical
// server output (the state machine must not depend on how TCP splits data), and every
// transmission reply starts with a valid reply magic.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "nbd/handshake.h"
#include "nbd/memory_export.h"
#include "nbd/transmission.h"

namespace {

using namespace blocksnap::nbd;

class CheckingSink final : public ReplySink {
 public:
  void SendReply(Slot& slot) noexcept override {
    std::string out;
    for (const auto& v : slot.iov) out.append(static_cast<const char*>(v.iov_base), v.iov_len);
    if (out.size() < 4) std::abort();
    uint32_t magic = Get32(reinterpret_cast<const uint8_t*>(out.data()));
    if (magic != kSimpleReplyMagic && magic != kStructuredReplyMagic) std::abort();
    bytes += out.size();
  }
  size_t bytes = 0;
};

MemoryCatalog& Catalog() {
  static MemoryCatalog* catalog = [] {
    static MemoryCatalog c;
    ExportInfo info;
    info.size = 1 << 20;
    info.description = "fuzz";
    c.Add("disk", info);
    ExportInfo ro = info;
    ro.read_only = true;
    c.Add("ro", ro);
    return &c;
  }();
  return *catalog;
}

std::string RunHandshake(std::string_view in, size_t piece, Handshake& hs) {
  std::string out = hs.TakeOutput();
  for (size_t pos = 0; pos < in.size() && hs.state() == Handshake::State::kNegotiating;
       pos += piece) {
    hs.Feed(in.substr(pos, piece));
    out += hs.TakeOutput();
    // As the connection does: options held back at the output bound are handled once the
    // output is taken, before more input.
    while (hs.stalled()) {
      hs.Resume();
      out += hs.TakeOutput();
    }
  }
  return out;
}

void RunTransmission(Handshake& hs) {
  std::string rest = hs.TakeLeftover();
  CheckingSink sink;
  Transmission tx(hs.TakeExport(), hs.negotiated(), sink);
  Slot slot;
  size_t pos = 0;
  while (rest.size() - pos >= kRequestHeaderSize) {
    if (!ParseRequestHeader(reinterpret_cast<const uint8_t*>(rest.data() + pos), slot.req)) {
      return;  // the server closes on a bad magic
    }
    pos += kRequestHeaderSize;
    if (slot.req.type == kCmdDisc) return;
    if (PayloadTooLarge(slot.req)) return tx.RejectRequest(slot, kEINVAL);
    uint32_t payload = PayloadLength(slot.req);
    if (rest.size() - pos < payload) return;
    slot.data.Resize(payload);
    std::copy_n(rest.data() + pos, payload, slot.data.data());
    pos += payload;
    tx.Handle(slot);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  Handshake whole(Catalog());
  Handshake pieces(Catalog());
  std::string a = RunHandshake(in, in.size() ? in.size() : 1, whole);
  std::string b = RunHandshake(in, 7, pieces);
  // Leftover of the whole feed vs pieces differs only in bytes not yet fed; outputs match.
  if (a != b || whole.state() != pieces.state()) std::abort();
  if (whole.state() == Handshake::State::kTransmission) RunTransmission(whole);
  return 0;
}
