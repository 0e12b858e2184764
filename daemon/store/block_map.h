// BlockMap: the versioned block map of every volume (CF map).
//
// Key: <volume id:8 BE><chunk index:8 BE><version:8 BE>; value: the chunk's 32-byte SHA-256,
// or an empty value, the zero marker (the chunk reads as zeros). Snapshot version v of a
// volume writes entries only for the chunks it changed; reading chunk c as of version v
// takes the entry with the greatest version <= v, found with one SeekForPrev. A chunk with
// no such entry was never written and reads as zeros. See FORMAT.md.
#pragma once

#include <rocksdb/write_batch.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "store/db.h"
#include "store/sha256.h"
#include "util/status.h"

namespace blocksnap {

// One block map value: a chunk hash, or the zero marker.
struct MapValue {
  bool zero = true;
  Hash hash{};

  static MapValue Zero() { return {}; }
  static MapValue Of(const Hash& h) { return {false, h}; }
  bool operator==(const MapValue& o) const { return zero == o.zero && (zero || hash == o.hash); }
};

inline constexpr uint64_t kMaxVersion = UINT64_MAX;

std::string MapKey(uint64_t volume, uint64_t chunk, uint64_t version);
// The 8-byte prefix shared by every key of a volume.
std::string MapVolumePrefix(uint64_t volume);
// Splits a map key; false when it is not 24 bytes.
bool ParseMapKey(std::string_view key, uint64_t& volume, uint64_t& chunk, uint64_t& version);
std::string EncodeMapValue(const MapValue& v);
// kCorruption when the value is neither empty nor 32 bytes.
Result<MapValue> DecodeMapValue(std::string_view v);

class BlockMap {
 public:
  explicit BlockMap(Db& db) : db_(db) {}

  // Chunk `chunk` of `volume` as of `version`: the entry with the greatest version <= version,
  // or nullopt when there is none (never written: zeros).
  Result<std::optional<MapValue>> Lookup(uint64_t volume, uint64_t chunk, uint64_t version);

  // Calls fn(chunk, value) in chunk order for every chunk of `volume` with an entry visible
  // as of `version`. Entries of versions in `ignore` (e.g. a pending snapshot) are skipped.
  Status ForEachAsOf(uint64_t volume, uint64_t version,
                     const std::function<Status(uint64_t chunk, const MapValue&)>& fn,
                     const std::function<bool(uint64_t version)>& ignore = nullptr);

  // Calls fn(chunk, version, value) for every entry of `volume`, in key order.
  Status ForEachEntry(
      uint64_t volume,
      const std::function<Status(uint64_t chunk, uint64_t version, const MapValue&)>& fn);

  // The ids of every volume that has at least one entry, ascending.
  Result<std::vector<uint64_t>> Volumes();

  void StagePut(rocksdb::WriteBatch& b, uint64_t volume, uint64_t chunk, uint64_t version,
                const MapValue& v) {
    b.Put(db_.cf(Cf::kMap), MapKey(volume, chunk, version), EncodeMapValue(v));
  }
  void StageDelete(rocksdb::WriteBatch& b, uint64_t volume, uint64_t chunk, uint64_t version) {
    b.Delete(db_.cf(Cf::kMap), MapKey(volume, chunk, version));
  }

 private:
  Db& db_;
};

}  // namespace blocksnap
