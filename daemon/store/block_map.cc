#include "store/block_map.h"

#include <memory>

#include "store/big_endian.h"

namespace blocksnap {
namespace {

std::string_view View(const rocksdb::Slice& s) {
  return {s.data(), s.size()};
}

}  // namespace

std::string MapKey(uint64_t volume, uint64_t chunk, uint64_t version) {
  std::string k;
  k.reserve(24);
  PutBe64(k, volume);
  PutBe64(k, chunk);
  PutBe64(k, version);
  return k;
}

std::string MapVolumePrefix(uint64_t volume) {
  std::string k;
  PutBe64(k, volume);
  return k;
}

bool ParseMapKey(std::string_view key, uint64_t& volume, uint64_t& chunk, uint64_t& version) {
  if (key.size() != 24) return false;
  volume = GetBe64(key.substr(0, 8));
  chunk = GetBe64(key.substr(8, 8));
  version = GetBe64(key.substr(16, 8));
  return true;
}

std::string EncodeMapValue(const MapValue& v) {
  return v.zero ? std::string() : std::string(HashBytes(v.hash));
}

Result<MapValue> DecodeMapValue(std::string_view v) {
  if (v.empty()) return MapValue::Zero();
  MapValue m;
  if (!HashFromBytes(v, m.hash))
    return Corruption("block map value of " + std::to_string(v.size()) + " bytes");
  m.zero = false;
  return m;
}

Result<std::optional<MapValue>> BlockMap::Lookup(uint64_t volume, uint64_t chunk,
                                                 uint64_t version) {
  std::unique_ptr<rocksdb::Iterator> it(
      db_.raw()->NewIterator(rocksdb::ReadOptions(), db_.cf(Cf::kMap)));
  std::string target = MapKey(volume, chunk, version);
  it->SeekForPrev(target);
  if (!it->Valid()) {
    BS_RETURN_IF_ERROR(FromRocks(it->status(), "reading the block map"));
    return std::optional<MapValue>();
  }
  auto key = View(it->key());
  // Same volume and chunk (the first 16 bytes): otherwise the chunk has no entry <= version.
  if (key.size() != 24 || key.substr(0, 16) != std::string_view(target).substr(0, 16))
    return std::optional<MapValue>();
  BS_ASSIGN_OR_RETURN(MapValue v, DecodeMapValue(View(it->value())));
  return std::optional<MapValue>(v);
}

Status BlockMap::ForEachAsOf(uint64_t volume, uint64_t version,
                             const std::function<Status(uint64_t, const MapValue&)>& fn,
                             const std::function<bool(uint64_t)>& ignore) {
  // Entries are sorted by chunk, then version: remember the last visible entry of the
  // current chunk and emit it when the chunk changes.
  bool have = false;
  uint64_t cur_chunk = 0;
  MapValue cur;
  BS_RETURN_IF_ERROR(ForEachEntry(volume, [&](uint64_t c, uint64_t v, const MapValue& val) {
    if (have && c != cur_chunk) {
      BS_RETURN_IF_ERROR(fn(cur_chunk, cur));
      have = false;
    }
    if (v <= version && !(ignore && ignore(v))) {
      have = true;
      cur_chunk = c;
      cur = val;
    }
    return Status::Ok();
  }));
  if (have) BS_RETURN_IF_ERROR(fn(cur_chunk, cur));
  return Status::Ok();
}

Status BlockMap::ForEachEntry(
    uint64_t volume, const std::function<Status(uint64_t, uint64_t, const MapValue&)>& fn) {
  std::string prefix = MapVolumePrefix(volume);
  std::string upper = volume == UINT64_MAX ? std::string(9, '\xff') : MapVolumePrefix(volume + 1);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_.raw()->NewIterator(ro, db_.cf(Cf::kMap)));
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    uint64_t vol, chunk, version;
    if (!ParseMapKey(View(it->key()), vol, chunk, version))
      return Corruption("block map key of " + std::to_string(it->key().size()) + " bytes");
    BS_ASSIGN_OR_RETURN(MapValue v, DecodeMapValue(View(it->value())));
    BS_RETURN_IF_ERROR(fn(chunk, version, v));
  }
  return FromRocks(it->status(), "scanning the block map");
}

Result<std::vector<uint64_t>> BlockMap::Volumes() {
  auto ids = db_.LeadingIds(Cf::kMap);
  if (!ids.ok()) return ids.status().WithContext("scanning the block map");
  return ids;
}

}  // namespace blocksnap
