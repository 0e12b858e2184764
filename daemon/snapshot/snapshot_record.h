// SnapshotRecord: what RocksDB keeps about a snapshot (meta key "snap/<id>"), its stored
// JSON, and the API object of DESIGN.md §7.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "util/parse.h"
#include "util/status.h"
#include "util/time_format.h"

namespace blocksnap {

// Snapshot ids: "snap-" + 16 hex digits of Db::NextId("snap").
std::string FormatSnapshotId(uint64_t id);
Result<uint64_t> ParseSnapshotId(std::string_view text);

inline constexpr std::string_view kSnapPending = "pending";
inline constexpr std::string_view kSnapCompleted = "completed";
inline constexpr std::string_view kSnapError = "error";

struct SnapshotRecord {
  uint64_t id = 0;
  uint64_t volume_id = 0;
  std::string volume_name;  // at creation; the volume may be deleted later
  uint64_t version = 0;     // the block map version this snapshot reads as of
  std::string state = std::string(kSnapPending);
  std::string error;  // why it failed (state error)
  SystemTime created{};
  Tags tags;
  uint64_t size = 0;         // logical bytes (the volume size)
  uint64_t chunk_size = 0;   // the volume's chunk size
  uint64_t chunks = 0;       // block map entries this snapshot wrote (chunks it changed)
  uint64_t added_bytes = 0;  // chunk bytes it stored that no earlier snapshot had
  uint64_t chunks_done = 0;  // progress over the frozen set (chunks to examine)
  uint64_t chunks_total = 0;
  uint64_t bytes_done = 0;
  uint64_t bytes_total = 0;
  uint64_t pause_us = 0;  // how long writes were held to fix the point in time
  // Locked: no delete (manual, policy retention) until unlocked. Absent in records written
  // before locks existed, which read as unlocked.
  bool locked = false;

  std::string IdString() const { return FormatSnapshotId(id); }
  std::string Key() const { return "snap/" + IdString(); }
  bool pending() const { return state == kSnapPending; }
  bool completed() const { return state == kSnapCompleted; }
  // 0..1; 1 when completed.
  double Progress() const;
  uint64_t ChunkCount() const { return chunk_size ? (size + chunk_size - 1) / chunk_size : 0; }
};

inline constexpr std::string_view kSnapKeyPrefix = "snap/";

std::string EncodeSnapshotRecord(const SnapshotRecord& r);
// Checks every field; kCorruption naming what is wrong.
Result<SnapshotRecord> DecodeSnapshotRecord(std::string_view json);
// The API object (DESIGN.md §7): id, volume (name), volume_id, state, error, created, tags,
// size, added_bytes, progress (0..1) plus chunks, chunk_size, pause_us, the progress
// counters and locked.
nlohmann::json SnapshotApiJson(const SnapshotRecord& r);

}  // namespace blocksnap
