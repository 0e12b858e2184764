#include "snapshot/snapshot_record.h"

#include <cinttypes>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "volume/volume_record.h"

namespace blocksnap {

std::string FormatSnapshotId(uint64_t id) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "snap-%016" PRIx64, id);
  return buf;
}

Result<uint64_t> ParseSnapshotId(std::string_view text) {
  auto bad = [&] { return InvalidArgument("invalid snapshot id '" + std::string(text) + "'"); };
  if (!text.starts_with("snap-") || text.size() != 21) return bad();
  uint64_t v = 0;
  for (char c : text.substr(5)) {
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (d < 0) return bad();
    v = v << 4 | static_cast<uint64_t>(d);
  }
  return v;
}

double SnapshotRecord::Progress() const {
  if (completed()) return 1.0;
  if (bytes_total == 0) return 0.0;
  return static_cast<double>(bytes_done) / static_cast<double>(bytes_total);
}

std::string EncodeSnapshotRecord(const SnapshotRecord& r) {
  nlohmann::json j = {
      {"id", r.IdString()},
      {"volume_id", FormatVolumeId(r.volume_id)},
      {"volume", r.volume_name},
      {"version", r.version},
      {"state", r.state},
      {"error", r.error},
      {"created", FormatRfc3339(r.created)},
      {"tags", r.tags},
      {"size", r.size},
      {"chunk_size", r.chunk_size},
      {"chunks", r.chunks},
      {"added_bytes", r.added_bytes},
      {"chunks_done", r.chunks_done},
      {"chunks_total", r.chunks_total},
      {"bytes_done", r.bytes_done},
      {"bytes_total", r.bytes_total},
      {"pause_us", r.pause_us},
      {"locked", r.locked},
  };
  return j.dump();
}

Result<SnapshotRecord> DecodeSnapshotRecord(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Corruption("snapshot record is not a JSON object");
  try {
    SnapshotRecord r;
    BS_ASSIGN_OR_RETURN(r.id, ParseSnapshotId(j.at("id").get<std::string>()));
    BS_ASSIGN_OR_RETURN(r.volume_id, ParseVolumeId(j.at("volume_id").get<std::string>()));
    r.volume_name = j.at("volume").get<std::string>();
    r.version = j.at("version").get<uint64_t>();
    r.state = j.at("state").get<std::string>();
    if (r.state != kSnapPending && r.state != kSnapCompleted && r.state != kSnapError)
      return Corruption("snapshot record has an invalid state '" + r.state + "'");
    r.error = j.at("error").get<std::string>();
    auto created = ParseRfc3339(j.at("created").get<std::string>());
    if (!created) return Corruption("snapshot record has an invalid 'created' time");
    r.created = *created;
    r.tags = j.at("tags").get<Tags>();
    r.size = j.at("size").get<uint64_t>();
    r.chunk_size = j.at("chunk_size").get<uint64_t>();
    r.chunks = j.at("chunks").get<uint64_t>();
    r.added_bytes = j.at("added_bytes").get<uint64_t>();
    r.chunks_done = j.at("chunks_done").get<uint64_t>();
    r.chunks_total = j.at("chunks_total").get<uint64_t>();
    r.bytes_done = j.at("bytes_done").get<uint64_t>();
    r.bytes_total = j.at("bytes_total").get<uint64_t>();
    r.pause_us = j.at("pause_us").get<uint64_t>();
    // Optional: records written before snapshot locks existed have no "locked" (unlocked).
    if (auto it = j.find("locked"); it != j.end()) r.locked = it->get<bool>();
    if (r.chunk_size == 0) return Corruption("snapshot record has chunk_size 0");
    return r;
  } catch (const nlohmann::json::exception& e) {
    return Corruption(std::string("snapshot record: ") + e.what());
  }
}

nlohmann::json SnapshotApiJson(const SnapshotRecord& r) {
  return {
      {"id", r.IdString()},
      {"volume", r.volume_name},
      {"volume_id", FormatVolumeId(r.volume_id)},
      {"state", r.state},
      {"error", r.error},
      {"created", FormatRfc3339(r.created)},
      {"tags", r.tags},
      {"size", r.size},
      {"chunk_size", r.chunk_size},
      {"chunks", r.chunks},
      {"added_bytes", r.added_bytes},
      {"progress", r.Progress()},
      {"chunks_done", r.chunks_done},
      {"chunks_total", r.chunks_total},
      {"bytes_done", r.bytes_done},
      {"bytes_total", r.bytes_total},
      {"pause_us", r.pause_us},
      {"locked", r.locked},
  };
}

}  // namespace blocksnap
