#include "bus/volume_codec.h"

#include "bus/bus_names.h"
#include "util/time_format.h"

namespace blocksnap {
namespace {

// One "{sv}" entry whose variant holds a basic value (type is its one-letter signature).
template <typename T>
int AppendBasicEntry(sd_bus_message* m, const char* key, const char* type, T value) {
  int r = sd_bus_message_open_container(m, 'e', "sv");
  if (r < 0) return r;
  r = sd_bus_message_append(m, "s", key);
  if (r < 0) return r;
  r = sd_bus_message_open_container(m, 'v', type);
  if (r < 0) return r;
  r = sd_bus_message_append_basic(m, type[0], value);
  if (r < 0) return r;
  r = sd_bus_message_close_container(m);
  if (r < 0) return r;
  return sd_bus_message_close_container(m);
}

// One "{sv}" entry whose variant is filled by append(m).
template <typename F>
int AppendCompositeEntry(sd_bus_message* m, const char* key, const char* type, F&& append) {
  int r = sd_bus_message_open_container(m, 'e', "sv");
  if (r < 0) return r;
  r = sd_bus_message_append(m, "s", key);
  if (r < 0) return r;
  r = sd_bus_message_open_container(m, 'v', type);
  if (r < 0) return r;
  r = append(m);
  if (r < 0) return r;
  r = sd_bus_message_close_container(m);
  if (r < 0) return r;
  return sd_bus_message_close_container(m);
}

}  // namespace

int AppendClients(sd_bus_message* m, const std::vector<ClientInfo>& clients) {
  int r = sd_bus_message_open_container(m, 'a', "(sss)");
  if (r < 0) return r;
  for (const ClientInfo& c : clients) {
    const std::string connected = FormatRfc3339(c.connected);
    // The export name is what the NBD client sent: any bytes.
    r = sd_bus_message_open_container(m, 'r', "sss");
    if (r >= 0) r = AppendText(m, c.address);
    if (r >= 0) r = AppendText(m, c.export_name);
    if (r >= 0) r = AppendText(m, connected);
    if (r >= 0) r = sd_bus_message_close_container(m);
    if (r < 0) return r;
  }
  return sd_bus_message_close_container(m);
}

int AppendVolumeDict(sd_bus_message* m, const BusContext& ctx, const VolumeRecord& rec) {
  const std::string id = rec.IdString();
  const std::string path = VolumeObjectPath(id);
  const std::string created = FormatRfc3339(rec.created);
  const std::string uri = ctx.VolumeUri(rec);
  const std::vector<ClientInfo> clients = ctx.Clients(rec.id);

  int r = sd_bus_message_open_container(m, 'a', "{sv}");
  if (r < 0) return r;
  if ((r = AppendBasicEntry(m, "Id", "s", id.c_str())) < 0) return r;
  if ((r = AppendBasicEntry(m, "Name", "s", rec.name.c_str())) < 0) return r;
  if ((r = AppendBasicEntry(m, "Path", "o", path.c_str())) < 0) return r;
  if ((r = AppendBasicEntry(m, "Size", "t", &rec.size)) < 0) return r;
  if ((r = AppendBasicEntry(m, "ChunkSize", "t", &rec.chunk_size)) < 0) return r;
  r = AppendCompositeEntry(m, "Tags", kTagsSignature,
                           [&](sd_bus_message* mm) { return AppendTags(mm, rec.tags); });
  if (r < 0) return r;
  if ((r = AppendBasicEntry(m, "State", "s", rec.state.c_str())) < 0) return r;
  if ((r = AppendBasicEntry(m, "Created", "s", created.c_str())) < 0) return r;
  if ((r = AppendBasicEntry(m, "Uri", "s", uri.c_str())) < 0) return r;
  r = AppendCompositeEntry(m, "Clients", kClientsSignature,
                           [&](sd_bus_message* mm) { return AppendClients(mm, clients); });
  if (r < 0) return r;
  // [restore] "" / 0 for a volume that was not restored from a snapshot.
  if ((r = AppendBasicEntry(m, "OriginSnapshot", "s", rec.origin_snapshot.c_str())) < 0) return r;
  if ((r = AppendBasicEntry(m, "HydratedBytes", "t", &rec.hydrated_bytes)) < 0) return r;
  if ((r = AppendBasicEntry(m, "HydrateTotalBytes", "t", &rec.hydrate_total_bytes)) < 0) return r;
  return sd_bus_message_close_container(m);
}

}  // namespace blocksnap
