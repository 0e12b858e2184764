#include "bus/snapshot_object.h"

#include <cerrno>
#include <string>
#include <vector>

#include "bus/basic_codec.h"
#include "bus/node_list.h"
#include "snapshot/snapshot_manager.h"
#include "util/time_format.h"

namespace blocksnap {
namespace {

BusContext& Ctx(void* userdata) {
  return *static_cast<BusContext*>(userdata);
}

Result<SnapshotRecord> RecordAt(const BusContext& ctx, const char* path) {
  std::optional<std::string> id = SnapshotIdFromObjectPath(path);
  if (!id) return NotFound(std::string("no snapshot at object path ") + path);
  if (ctx.services->snapshots == nullptr) return Busy("the snapshot engine is not running");
  return ctx.services->snapshots->Get(*id);
}

int FindSnapshot(sd_bus*, const char* path, const char*, void* userdata, void** found,
                 sd_bus_error*) noexcept {
  try {
    if (!RecordAt(Ctx(userdata), path).ok()) return 0;
    *found = userdata;
    return 1;
  } catch (...) {
    return -ENOMEM;
  }
}

int EnumerateSnapshots(sd_bus*, const char*, void* userdata, char*** nodes,
                       sd_bus_error*) noexcept {
  try {
    SnapshotManager* snaps = Ctx(userdata).services->snapshots;
    std::vector<std::string> paths;
    if (snaps != nullptr) {
      Result<std::vector<SnapshotRecord>> list = snaps->List();
      if (list.ok())
        for (const SnapshotRecord& r : *list) paths.push_back(SnapshotObjectPath(r.IdString()));
    }
    return NodeList(paths, nodes);
  } catch (...) {
    return -ENOMEM;
  }
}

int GetProperty(sd_bus*, const char* path, const char*, const char* property, sd_bus_message* reply,
                void* userdata, sd_bus_error* ret_error) noexcept {
  return GuardHandler(ret_error, [&]() -> int {
    Result<SnapshotRecord> rec = RecordAt(Ctx(userdata), path);
    if (!rec.ok()) return SetBusError(ret_error, rec.status());
    const std::string_view p = property;
    if (p == "Id") return sd_bus_message_append(reply, "s", rec->IdString().c_str());
    if (p == "Volume") return sd_bus_message_append(reply, "s", rec->volume_name.c_str());
    if (p == "VolumeId")
      return sd_bus_message_append(reply, "s", FormatVolumeId(rec->volume_id).c_str());
    if (p == "State") return sd_bus_message_append(reply, "s", rec->state.c_str());
    if (p == "Error") return AppendText(reply, rec->error);  // may quote paths
    if (p == "Created")
      return sd_bus_message_append(reply, "s", FormatRfc3339(rec->created).c_str());
    if (p == "Tags") return AppendTags(reply, rec->tags);
    if (p == "Size") return sd_bus_message_append(reply, "t", rec->size);
    if (p == "AddedBytes") return sd_bus_message_append(reply, "t", rec->added_bytes);
    if (p == "Progress") return sd_bus_message_append(reply, "d", rec->Progress());
    if (p == "PauseUsec") return sd_bus_message_append(reply, "t", rec->pause_us);
    if (p == "Locked") return sd_bus_message_append(reply, "b", rec->locked ? 1 : 0);
    return SetBusError(ret_error, Internal(std::string("no getter for property ") + property));
  });
}

// Nothing is signalled (EmitsChangedSignal=false): State and Progress change as the copy
// runs; SnapshotCompleted on the Manager says when it has ended. Tags and Locked change only
// by a client's call, whose reply carries the new dictionary.
const sd_bus_vtable kSnapshotObjectVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("Id", "s", GetProperty, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Volume", "s", GetProperty, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("VolumeId", "s", GetProperty, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Created", "s", GetProperty, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Size", "t", GetProperty, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("State", "s", GetProperty, 0, 0),
    SD_BUS_PROPERTY("Error", "s", GetProperty, 0, 0),
    SD_BUS_PROPERTY("Progress", "d", GetProperty, 0, 0),
    SD_BUS_PROPERTY("AddedBytes", "t", GetProperty, 0, 0),
    SD_BUS_PROPERTY("PauseUsec", "t", GetProperty, 0, 0),
    SD_BUS_PROPERTY("Tags", "a{ss}", GetProperty, 0, 0),
    SD_BUS_PROPERTY("Locked", "b", GetProperty, 0, 0),
    SD_BUS_VTABLE_END,
};

}  // namespace

std::string SnapshotObjectPath(std::string_view snapshot_id) {
  std::string path = std::string(kSnapshotPathPrefix) + "/";
  for (char ch : snapshot_id) path += ch == '-' ? '_' : ch;
  return path;
}

std::optional<std::string> SnapshotIdFromObjectPath(std::string_view path) {
  const std::string prefix = std::string(kSnapshotPathPrefix) + "/";
  if (path.substr(0, prefix.size()) != prefix) return std::nullopt;
  std::string id(path.substr(prefix.size()));
  if (id.empty() || id.find('/') != std::string::npos) return std::nullopt;
  for (char& ch : id)
    if (ch == '_') ch = '-';
  return id;
}

int AddSnapshotObjects(sd_bus* bus, BusContext* ctx) {
  int r = sd_bus_add_fallback_vtable(bus, nullptr, kSnapshotPathPrefix, kSnapshotInterface,
                                     kSnapshotObjectVtable, FindSnapshot, ctx);
  if (r < 0) return r;
  return sd_bus_add_node_enumerator(bus, nullptr, kSnapshotPathPrefix, EnumerateSnapshots, ctx);
}

}  // namespace blocksnap
