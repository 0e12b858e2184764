#include "bus/volume_object.h"

#include <cerrno>
#include <string>
#include <vector>

#include "bus/bus_names.h"
#include "bus/node_list.h"
#include "bus/volume_codec.h"
#include "util/time_format.h"

namespace blocksnap {
namespace {

BusContext& Ctx(void* userdata) {
  return *static_cast<BusContext*>(userdata);
}

// The record behind an object path; NotFound when the volume is gone (deleted between the
// find callback and the getter, or a stale path).
Result<VolumeRecord> RecordAt(const BusContext& ctx, const char* path) {
  std::optional<std::string> id = VolumeIdFromObjectPath(path);
  if (!id) return NotFound(std::string("no volume at object path ") + path);
  return ctx.volumes().Get(*id);
}

// sd-bus calls this to learn whether `path` is a volume object; the userdata it returns is
// handed to the getters (the context: records are looked up afresh by path, as the manager
// owns them and a pointer into it could dangle).
int FindVolume(sd_bus* /*bus*/, const char* path, const char* /*interface*/, void* userdata,
               void** found, sd_bus_error* /*ret_error*/) noexcept {
  try {
    if (!RecordAt(Ctx(userdata), path).ok()) return 0;
    *found = userdata;
    return 1;
  } catch (...) {
    return -ENOMEM;
  }
}

// Lists every volume's object path for introspection and GetManagedObjects-style walks.
int EnumerateVolumes(sd_bus* /*bus*/, const char* /*prefix*/, void* userdata, char*** nodes,
                     sd_bus_error* /*ret_error*/) noexcept {
  try {
    std::vector<std::string> paths;
    for (const VolumeRecord& r : Ctx(userdata).volumes().List())
      paths.push_back(VolumeObjectPath(r.IdString()));
    return NodeList(paths, nodes);
  } catch (...) {
    return -ENOMEM;
  }
}

// One getter for every property: the property name selects the field. Keeps the vtable
// small and the record lookup in one place.
int GetProperty(sd_bus* /*bus*/, const char* path, const char* /*interface*/, const char* property,
                sd_bus_message* reply, void* userdata, sd_bus_error* ret_error) noexcept {
  return GuardHandler(ret_error, [&]() -> int {
    const BusContext& ctx = Ctx(userdata);
    Result<VolumeRecord> rec = RecordAt(ctx, path);
    if (!rec.ok()) return SetBusError(ret_error, rec.status());
    const std::string_view p = property;
    if (p == "Id") return sd_bus_message_append(reply, "s", rec->IdString().c_str());
    if (p == "Name") return sd_bus_message_append(reply, "s", rec->name.c_str());
    if (p == "Size") return sd_bus_message_append(reply, "t", rec->size);
    if (p == "ChunkSize") return sd_bus_message_append(reply, "t", rec->chunk_size);
    if (p == "Tags") return AppendTags(reply, rec->tags);
    if (p == "State") return sd_bus_message_append(reply, "s", rec->state.c_str());
    if (p == "Created")
      return sd_bus_message_append(reply, "s", FormatRfc3339(rec->created).c_str());
    if (p == "Uri") return sd_bus_message_append(reply, "s", ctx.VolumeUri(*rec).c_str());
    if (p == "Clients") return AppendClients(reply, ctx.Clients(rec->id));
    // [restore]
    if (p == "OriginSnapshot")
      return sd_bus_message_append(reply, "s", rec->origin_snapshot.c_str());
    if (p == "HydratedBytes") return sd_bus_message_append(reply, "t", rec->hydrated_bytes);
    if (p == "HydrateTotalBytes")
      return sd_bus_message_append(reply, "t", rec->hydrate_total_bytes);
    return SetBusError(ret_error, Internal(std::string("no getter for property ") + property));
  });
}

// CONST: fixed for a volume's lifetime. EMITS_CHANGE: PropertiesChanged carries the new
// value. Clients has neither flag: it changes with every NBD connection and is not signalled
// (introspection says EmitsChangedSignal=false); read it when needed.
const sd_bus_vtable kVolumeVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("Id", "s", GetProperty, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Name", "s", GetProperty, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Size", "t", GetProperty, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("ChunkSize", "t", GetProperty, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Created", "s", GetProperty, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Tags", "a{ss}", GetProperty, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("State", "s", GetProperty, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Uri", "s", GetProperty, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Clients", "a(sss)", GetProperty, 0, 0),
    // [restore] "" / 0 unless restored from a snapshot; HydratedBytes moves without signals.
    SD_BUS_PROPERTY("OriginSnapshot", "s", GetProperty, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("HydratedBytes", "t", GetProperty, 0, 0),
    SD_BUS_PROPERTY("HydrateTotalBytes", "t", GetProperty, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_VTABLE_END,
};

}  // namespace

int AddVolumeObjects(sd_bus* bus, BusContext* ctx) {
  int r = sd_bus_add_fallback_vtable(bus, nullptr, kVolumePathPrefix, kVolumeInterface,
                                     kVolumeVtable, FindVolume, ctx);
  if (r < 0) return r;
  return sd_bus_add_node_enumerator(bus, nullptr, kVolumePathPrefix, EnumerateVolumes, ctx);
}

}  // namespace blocksnap
