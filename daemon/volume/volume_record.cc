#include "volume/volume_record.h"

#include <cinttypes>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace blocksnap {

std::string FormatVolumeId(uint64_t id) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "vol-%016" PRIx64, id);
  return buf;
}

Result<uint64_t> ParseVolumeId(std::string_view text) {
  if (!text.starts_with("vol-") || text.size() != 20)
    return InvalidArgument("invalid volume id '" + std::string(text) + "'");
  uint64_t v = 0;
  for (char c : text.substr(4)) {
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (d < 0) return InvalidArgument("invalid volume id '" + std::string(text) + "'");
    v = v << 4 | static_cast<uint64_t>(d);
  }
  return v;
}

std::string EncodeVolumeRecord(const VolumeRecord& r) {
  nlohmann::json j = {
      {"id", r.IdString()},
      {"name", r.name},
      {"size", r.size},
      {"chunk_size", r.chunk_size},
      {"tags", r.tags},
      {"state", r.state},
      {"created", FormatRfc3339(r.created)},
  };
  if (!r.origin_snapshot.empty()) {  // [restore]
    j["origin_snapshot"] = r.origin_snapshot;
    j["hydrated_bytes"] = r.hydrated_bytes;
    j["hydrate_total_bytes"] = r.hydrate_total_bytes;
    j["fast_restore"] = r.fast_restore;
  }
  return j.dump();
}

Result<VolumeRecord> DecodeVolumeRecord(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Corruption("volume record is not a JSON object");
  try {
    VolumeRecord r;
    BS_ASSIGN_OR_RETURN(r.id, ParseVolumeId(j.at("id").get<std::string>()));
    r.name = j.at("name").get<std::string>();
    r.size = j.at("size").get<uint64_t>();
    r.chunk_size = j.at("chunk_size").get<uint64_t>();
    r.tags = j.at("tags").get<Tags>();
    r.state = j.at("state").get<std::string>();
    auto created = ParseRfc3339(j.at("created").get<std::string>());
    if (!created) return Corruption("volume record has an invalid 'created' time");
    r.created = *created;
    if (j.contains("origin_snapshot")) {  // [restore]
      r.origin_snapshot = j.at("origin_snapshot").get<std::string>();
      r.hydrated_bytes = j.at("hydrated_bytes").get<uint64_t>();
      r.hydrate_total_bytes = j.at("hydrate_total_bytes").get<uint64_t>();
      r.fast_restore = j.at("fast_restore").get<bool>();
    }
    return r;
  } catch (const nlohmann::json::exception& e) {
    return Corruption(std::string("volume record: ") + e.what());
  }
}

}  // namespace blocksnap
