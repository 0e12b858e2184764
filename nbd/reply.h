// Reply encoding: simple replies and structured reply chunks, appended to a byte vector.
#pragma once

#include <cstdint>
#include <vector>

#include "nbd/wire.h"

namespace blocksnap::nbd {

using Bytes = std::vector<uint8_t>;

// 16 bytes: magic, error, handle. Data (for a simple READ reply) follows separately.
void AppendSimpleReply(Bytes& out, uint64_t handle, uint32_t error);

// 20-byte structured chunk header; `length` is the payload that follows it.
void AppendChunkHeader(Bytes& out, uint16_t flags, uint16_t type, uint64_t handle, uint32_t length);

// Header and payload of NBD_REPLY_TYPE_ERROR (no message), with the DONE flag.
void AppendErrorChunk(Bytes& out, uint64_t handle, uint32_t error);

// Header + offset of an OFFSET_DATA chunk carrying `length` data bytes (sent separately).
void AppendDataChunkHeader(Bytes& out, uint16_t flags, uint64_t handle, uint64_t offset,
                           uint32_t length);

// A whole OFFSET_HOLE chunk.
void AppendHoleChunk(Bytes& out, uint16_t flags, uint64_t handle, uint64_t offset, uint32_t length);

// A NONE chunk with DONE: the answer to a zero-length structured READ.
void AppendNoneChunk(Bytes& out, uint64_t handle);

}  // namespace blocksnap::nbd
