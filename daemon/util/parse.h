// Parsing and validation of user input shared by the daemon, its config and blocksnapctl:
// sizes with suffixes, object names, tags.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "util/status.h"

namespace blocksnap {

using Tags = std::map<std::string, std::string>;

// "1073741824", "512K", "64M", "1G", "2T" (binary multiples; an optional trailing "iB"/"B"
// is accepted: "1GiB"). Rejects empty, negative, fractional, and overflowing input.
Result<uint64_t> ParseSize(std::string_view text);

// A byte count for humans: 1073741824 -> "1 GiB", 1536 -> "1.5 KiB".
std::string FormatSize(uint64_t bytes);

// Volume names: 1..64 characters of [A-Za-z0-9._-], not "." or "..", not a volume id.
Status ValidateVolumeName(std::string_view name);

// Volume sizes: positive, a multiple of 4096, at most 2^63 bytes.
Status ValidateVolumeSize(uint64_t size);

// Chunk sizes: a power of two from 4 KiB to 4 MiB.
Status ValidateChunkSize(uint64_t chunk_size);

// At most 2^31 chunks per volume (128 TiB at the default 64 KiB): dirty tracking keeps a few
// bitmaps of one bit per chunk in memory, 256 MiB each at the limit.
inline constexpr uint64_t kMaxVolumeChunks = uint64_t{1} << 31;
Status ValidateChunkCount(uint64_t size, uint64_t chunk_size);

// Tag keys: 1..128 of [A-Za-z0-9._:/-]; values: 0..256 printable characters. Keys starting
// with "blocksnap:" are reserved for the daemon and rejected unless allow_reserved.
Status ValidateTag(std::string_view key, std::string_view value, bool allow_reserved = false);

// "K=V" -> (K, V) after ValidateTag.
Result<std::pair<std::string, std::string>> ParseTagAssignment(std::string_view text);

inline constexpr std::string_view kReservedTagPrefix = "blocksnap:";
inline constexpr uint64_t kDefaultChunkSize = 64 * 1024;

}  // namespace blocksnap
