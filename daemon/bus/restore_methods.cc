#include "bus/restore_methods.h"

#include <string>

#include "bus/basic_codec.h"
#include "bus/bus_names.h"
#include "bus/credentials.h"
#include "bus/snapshot_async.h"
#include "snapshot/restore_manager.h"

namespace blocksnap {
namespace {

// CreateVolumeFromSnapshot(s name, s snapshot, t size, a{ss} tags, b hydrate) -> (o path, s id)
int CreateVolumeFromSnapshot(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
  return GuardHandler(ret_error, [&]() -> int {
    BusContext& ctx = *static_cast<BusContext*>(userdata);
    RestoreRequest req;
    const char* name = nullptr;
    const char* snapshot = nullptr;
    int r = sd_bus_message_read(m, "sst", &name, &snapshot, &req.size);
    if (r < 0) return r;
    req.name = name;
    req.snapshot = snapshot;
    if ((r = ReadTags(m, &req.tags)) < 0) return r;
    int hydrate = 0;
    if ((r = sd_bus_message_read(m, "b", &hydrate)) < 0) return r;
    req.hydrate = hydrate != 0;

    Status st = ValidateVolumeName(req.name);
    for (const auto& [k, v] : req.tags)
      if (st.ok()) st = ValidateTag(k, v);
    if (st.ok() && req.size != 0) st = ValidateVolumeSize(req.size);
    if (st.ok() && !ctx.services->restore)
      st = Internal("restoring snapshots is not available in this daemon");
    if (st.ok()) st = CheckMayMutate(m, "restoring a snapshot");
    if (!st.ok()) return SetBusError(ret_error, st);

    // The restore base copies the snapshot's block map: on a worker, for big snapshots.
    BusContext* c = &ctx;
    return AnswerLater(m, c, [c, req = std::move(req)]() -> Result<Answer> {
      BS_ASSIGN_OR_RETURN(VolumeRecord rec, c->services->restore->Create(req));
      return Answer([c, rec](PendingReply& call) {
        c->events->VolumeCreated(rec);
        const std::string id = rec.IdString();
        const std::string path = VolumeObjectPath(id);
        call.Reply([&](sd_bus_message* reply) {
          return sd_bus_message_append(reply, "os", path.c_str(), id.c_str());
        });
      });
    });
  });
}

const sd_bus_vtable kRestoreVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD_WITH_NAMES("CreateVolumeFromSnapshot", "ssta{ss}b",
                             SD_BUS_PARAM(name) SD_BUS_PARAM(snapshot) SD_BUS_PARAM(size)
                                 SD_BUS_PARAM(tags) SD_BUS_PARAM(hydrate),
                             "os", SD_BUS_PARAM(path) SD_BUS_PARAM(id), CreateVolumeFromSnapshot,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

}  // namespace

int AddRestoreMethods(sd_bus* bus, BusContext* ctx) {
  // No slot asked for: the bus owns the registration and frees it with the connection.
  return sd_bus_add_object_vtable(bus, nullptr, kManagerPath, kManagerInterface, kRestoreVtable,
                                  ctx);
}

}  // namespace blocksnap
