// Transmission-phase requests: header parsing and the one validate_request() that every
// request passes before an export sees it.
#pragma once

#include <cstdint>

#include "nbd/export.h"
#include "nbd/handshake.h"

namespace blocksnap::nbd {

struct Request {
  uint16_t flags = 0;
  uint16_t type = 0;
  uint64_t handle = 0;
  uint64_t offset = 0;
  uint32_t length = 0;
};

// Parses a 28-byte request header. False when the magic is wrong: the stream can no longer
// be trusted and the connection must close.
bool ParseRequestHeader(const uint8_t* p, Request& out);
void EncodeRequestHeader(const Request& r, uint8_t* p);  // for tests and fuzz seeds

// Bytes of payload that follow the header on the wire (only WRITE carries one).
inline uint32_t PayloadLength(const Request& r) {
  return r.type == kCmdWrite ? r.length : 0;
}

// A WRITE whose payload exceeds the advertised maximum: refused before any allocation, and
// since its bytes would have to be drained, the connection is closed after the error reply.
inline bool PayloadTooLarge(const Request& r) {
  return PayloadLength(r) > kMaxPayload;
}

// Checks a request against the export and the negotiation. Returns 0 when the export may
// run it, else the NBD error to reply with: EINVAL for unknown commands, flags not valid
// for the command or not negotiated, misalignment, out-of-range reads/trims/block status,
// oversized payloads, BLOCK_STATUS without a selected context; ENOSPC for writes past the
// end; EPERM for writes to a read-only export. Zero-length requests are valid (a no-op),
// except BLOCK_STATUS, which the spec requires to be non-empty.
uint32_t ValidateRequest(const Request& r, const ExportInfo& info, const Negotiated& neg);

}  // namespace blocksnap::nbd
