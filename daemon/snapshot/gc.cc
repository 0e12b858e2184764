#include "snapshot/gc.h"

#include <vector>

namespace blocksnap {
namespace {

constexpr uint64_t kGcBatchEntries = 4096;

struct Entry {
  uint64_t version;
  MapValue value;
};

}  // namespace

Result<GcResult> CollectGarbage(BlockMap& map, ChunkStore& store, uint64_t volume,
                                uint64_t chunk_size, const LiveVersions& live) {
  GcResult result;
  ChunkTxn txn;
  uint64_t staged = 0;
  std::vector<Entry> group;  // the settled (non-pending) entries of one chunk, ascending
  uint64_t group_chunk = 0;

  auto flush = [&]() -> Status {
    if (staged == 0) return Status::Ok();
    BS_ASSIGN_OR_RETURN(CommitInfo info, store.Commit(txn));
    result.freed_chunks += info.freed_chunks;
    result.freed_bytes += info.freed_bytes;
    staged = 0;
    return Status::Ok();
  };
  auto settle = [&]() -> Status {
    for (size_t i = 0; i < group.size(); ++i) {
      const bool newest = i + 1 == group.size();
      const uint64_t from = group[i].version;
      auto it = live.versions.lower_bound(from);
      bool read = newest ? (live.head || it != live.versions.end())
                         : (it != live.versions.end() && *it < group[i + 1].version);
      if (read) continue;
      map.StageDelete(txn.batch(), volume, group_chunk, from);
      if (!group[i].value.zero) store.Release(txn, group[i].value.hash, chunk_size);
      result.dropped_entries++;
      if (++staged >= kGcBatchEntries) BS_RETURN_IF_ERROR(flush());
    }
    group.clear();
    return Status::Ok();
  };

  BS_RETURN_IF_ERROR(map.ForEachEntry(volume, [&](uint64_t c, uint64_t v, const MapValue& val) {
    if (!group.empty() && c != group_chunk) BS_RETURN_IF_ERROR(settle());
    group_chunk = c;
    if (!live.pending.contains(v)) group.push_back({v, val});
    return Status::Ok();
  }));
  BS_RETURN_IF_ERROR(settle());
  BS_RETURN_IF_ERROR(flush());
  return result;
}

Result<uint64_t> StageDropVersion(BlockMap& map, ChunkStore& store, ChunkTxn& txn, uint64_t volume,
                                  uint64_t version, uint64_t chunk_size) {
  uint64_t n = 0;
  BS_RETURN_IF_ERROR(map.ForEachEntry(volume, [&](uint64_t c, uint64_t v, const MapValue& val) {
    if (v != version) return Status::Ok();
    map.StageDelete(txn.batch(), volume, c, v);
    if (!val.zero) store.Release(txn, val.hash, chunk_size);
    ++n;
    return Status::Ok();
  }));
  return n;
}

}  // namespace blocksnap
