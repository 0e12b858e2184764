// VolumeRecord: what RocksDB keeps about a volume (meta key "vol/<id>"), and its JSON form.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "util/parse.h"
#include "util/status.h"
#include "util/time_format.h"

namespace blocksnap {

// Volume ids are allocated from a counter and printed as "vol-" + 16 hex digits; the
// numeric form is the 8-byte big-endian prefix of the block map keys.
std::string FormatVolumeId(uint64_t id);
Result<uint64_t> ParseVolumeId(std::string_view text);

struct VolumeRecord {
  uint64_t id = 0;
  std::string name;
  uint64_t size = 0;
  uint64_t chunk_size = kDefaultChunkSize;
  Tags tags;
  std::string state = "available";  // creating | available | deleting | hydrating (restore)
  SystemTime created{};
  // [restore] A volume restored from a snapshot: its origin, and how much of the origin's
  // data is in its file yet. Stored only when origin_snapshot is set.
  std::string origin_snapshot;       // "snap-…", "" = not a restore
  uint64_t hydrated_bytes = 0;       // bytes of hydrate_total_bytes copied into the file
  uint64_t hydrate_total_bytes = 0;  // bytes of the origin's non-zero chunks
  bool fast_restore = false;         // --hydrate: `hydrating` until complete

  std::string IdString() const { return FormatVolumeId(id); }
  // The meta column family key of this record.
  std::string Key() const { return "vol/" + IdString(); }
};

// Record <-> stored JSON. Decoding checks every field and reports what is wrong.
std::string EncodeVolumeRecord(const VolumeRecord& r);
Result<VolumeRecord> DecodeVolumeRecord(std::string_view json);

}  // namespace blocksnap
