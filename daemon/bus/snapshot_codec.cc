#include "bus/snapshot_codec.h"

#include <cerrno>
#include <string>

#include "bus/basic_codec.h"

namespace blocksnap {
namespace {

int AppendVariant(sd_bus_message* m, const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::string: {
      const std::string text = ValidUtf8(v.get_ref<const std::string&>());  // e.g. `error`
      return sd_bus_message_append(m, "v", "s", text.c_str());
    }
    case nlohmann::json::value_t::boolean:
      return sd_bus_message_append(m, "v", "b", v.get<bool>() ? 1 : 0);
    case nlohmann::json::value_t::number_unsigned:
      return sd_bus_message_append(m, "v", "t", v.get<uint64_t>());
    case nlohmann::json::value_t::number_integer:
      return sd_bus_message_append(m, "v", "x", v.get<int64_t>());
    case nlohmann::json::value_t::number_float:
      return sd_bus_message_append(m, "v", "d", v.get<double>());
    case nlohmann::json::value_t::object: {
      Tags tags;
      for (auto it = v.begin(); it != v.end(); ++it)
        tags[it.key()] = it->is_string() ? it->get<std::string>() : it->dump();
      int r = sd_bus_message_open_container(m, 'v', "a{ss}");
      if (r >= 0) r = AppendTags(m, tags);
      if (r >= 0) r = sd_bus_message_close_container(m);
      return r;
    }
    default:
      return -EINVAL;
  }
}

}  // namespace

int AppendJsonDict(sd_bus_message* m, const nlohmann::json& object) {
  int r = sd_bus_message_open_container(m, 'a', "{sv}");
  for (auto it = object.begin(); r >= 0 && it != object.end(); ++it) {
    if (it->is_null()) continue;
    r = sd_bus_message_open_container(m, 'e', "sv");
    if (r >= 0) r = AppendText(m, it.key());
    if (r >= 0) r = AppendVariant(m, *it);
    if (r >= 0) r = sd_bus_message_close_container(m);
  }
  if (r < 0) return r;
  return sd_bus_message_close_container(m);
}

int AppendSnapshotDict(sd_bus_message* m, const SnapshotRecord& r) {
  return AppendJsonDict(m, SnapshotApiJson(r));
}

nlohmann::json StatusJson(const StoreStats& stats, uint64_t snapshots, uint64_t volumes) {
  return {
      {"stored_bytes", stats.stored_bytes},
      {"chunks", stats.chunks},
      {"logical_bytes", stats.referenced_bytes},
      {"disk_bytes", stats.disk_bytes},
      {"dedup_ratio", stats.dedup_ratio()},
      {"snapshots", snapshots},
      {"volumes", volumes},
  };
}

}  // namespace blocksnap
