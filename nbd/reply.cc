#include "nbd/reply.h"

namespace blocksnap::nbd {
namespace {

template <size_t N>
void Append(Bytes& out, const uint8_t (&b)[N]) {
  out.insert(out.end(), b, b + N);
}

}  // namespace

void AppendSimpleReply(Bytes& out, uint64_t handle, uint32_t error) {
  uint8_t b[kSimpleReplyHeaderSize];
  Put32(b, kSimpleReplyMagic);
  Put32(b + 4, error);
  Put64(b + 8, handle);
  Append(out, b);
}

void AppendChunkHeader(Bytes& out, uint16_t flags, uint16_t type, uint64_t handle,
                       uint32_t length) {
  uint8_t b[kStructuredReplyHeaderSize];
  Put32(b, kStructuredReplyMagic);
  Put16(b + 4, flags);
  Put16(b + 6, type);
  Put64(b + 8, handle);
  Put32(b + 16, length);
  Append(out, b);
}

void AppendErrorChunk(Bytes& out, uint64_t handle, uint32_t error) {
  AppendChunkHeader(out, kReplyFlagDone, kReplyTypeError, handle, 6);
  uint8_t b[6];
  Put32(b, error);
  Put16(b + 4, 0);  // no message
  Append(out, b);
}

void AppendDataChunkHeader(Bytes& out, uint16_t flags, uint64_t handle, uint64_t offset,
                           uint32_t length) {
  AppendChunkHeader(out, flags, kReplyTypeOffsetData, handle, 8 + length);
  uint8_t b[8];
  Put64(b, offset);
  Append(out, b);
}

void AppendHoleChunk(Bytes& out, uint16_t flags, uint64_t handle, uint64_t offset,
                     uint32_t length) {
  AppendChunkHeader(out, flags, kReplyTypeOffsetHole, handle, 12);
  uint8_t b[12];
  Put64(b, offset);
  Put32(b + 8, length);
  Append(out, b);
}

void AppendNoneChunk(Bytes& out, uint64_t handle) {
  AppendChunkHeader(out, kReplyFlagDone, kReplyTypeNone, handle, 0);
}

}  // namespace blocksnap::nbd
