// Manager method handlers. Each follows the timedated shape: read and validate the input,
// return early on a no-op, check the caller's authority, mutate through the VolumeManager,
// signal, reply. Every handler is noexcept and answers failures with a named error
// (bus_errors.cc) carrying the Status message.
#include "bus/manager_object.h"

#include <string>
#include <vector>

#include "bus/bus_names.h"
#include "bus/bus_ptr.h"
#include "bus/credentials.h"
#include "bus/snapshot_async.h"
#include "bus/volume_codec.h"

namespace blocksnap {
namespace {

BusContext& Ctx(void* userdata) {
  return *static_cast<BusContext*>(userdata);
}

Status ValidateTags(const Tags& tags) {
  for (const auto& [key, value] : tags) BS_RETURN_IF_ERROR(ValidateTag(key, value));
  return Status::Ok();
}

// Replies to `call` with a single a{sv} describing rec.
int ReplyVolumeDict(sd_bus_message* call, const BusContext& ctx, const VolumeRecord& rec) {
  sd_bus_message* raw = nullptr;
  int r = sd_bus_message_new_method_return(call, &raw);
  MessagePtr reply(raw);
  if (r < 0) return r;
  if ((r = AppendVolumeDict(reply.get(), ctx, rec)) < 0) return r;
  return sd_bus_send(nullptr, reply.get(), nullptr);
}

int CreateVolume(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
  return GuardHandler(ret_error, [&]() -> int {
    BusContext& ctx = Ctx(userdata);
    CreateVolumeRequest req;
    const char* name = nullptr;
    uint64_t chunk_size = 0;
    int r = sd_bus_message_read(m, "stt", &name, &req.size, &chunk_size);
    if (r < 0) return r;
    req.name = name;
    if ((r = ReadTags(m, &req.tags)) < 0) return r;
    req.chunk_size = chunk_size == 0 ? kDefaultChunkSize : chunk_size;

    // The VolumeManager validates too; checking here first keeps a bad request from ever
    // reaching the authority check (the caller learns what is wrong, not that it may not).
    Status st = ValidateVolumeName(req.name);
    if (st.ok()) st = ValidateVolumeSize(req.size);
    if (st.ok()) st = ValidateChunkSize(req.chunk_size);
    if (st.ok()) st = ValidateChunkCount(req.size, req.chunk_size);
    if (st.ok()) st = ValidateTags(req.tags);
    if (st.ok()) st = CheckMayMutate(m, "creating a volume");
    if (!st.ok()) return SetBusError(ret_error, st);

    Result<VolumeRecord> rec = ctx.volumes().Create(req);
    if (!rec.ok()) return SetBusError(ret_error, rec.status());
    ctx.events->VolumeCreated(*rec);
    const std::string id = rec->IdString();
    const std::string path = VolumeObjectPath(id);
    return sd_bus_reply_method_return(m, "os", path.c_str(), id.c_str());
  });
}

int ListVolumes(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
  return GuardHandler(ret_error, [&]() -> int {
    BusContext& ctx = Ctx(userdata);
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_return(m, &raw);
    MessagePtr reply(raw);
    if (r < 0) return r;
    if ((r = sd_bus_message_open_container(reply.get(), 'a', kVolumeDictSignature)) < 0) return r;
    for (const VolumeRecord& rec : ctx.volumes().List())
      if ((r = AppendVolumeDict(reply.get(), ctx, rec)) < 0) return r;
    if ((r = sd_bus_message_close_container(reply.get())) < 0) return r;
    return sd_bus_send(nullptr, reply.get(), nullptr);
  });
}

int GetVolume(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
  return GuardHandler(ret_error, [&]() -> int {
    BusContext& ctx = Ctx(userdata);
    const char* name = nullptr;
    int r = sd_bus_message_read(m, "s", &name);
    if (r < 0) return r;
    Result<VolumeRecord> rec = ctx.volumes().Get(name);
    if (!rec.ok()) return SetBusError(ret_error, rec.status());
    return ReplyVolumeDict(m, ctx, *rec);
  });
}

int GetVolumePath(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
  return GuardHandler(ret_error, [&]() -> int {
    const char* name = nullptr;
    int r = sd_bus_message_read(m, "s", &name);
    if (r < 0) return r;
    Result<VolumeRecord> rec = Ctx(userdata).volumes().Get(name);
    if (!rec.ok()) return SetBusError(ret_error, rec.status());
    const std::string path = VolumeObjectPath(rec->IdString());
    return sd_bus_reply_method_return(m, "o", path.c_str());
  });
}

int DeleteVolume(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
  return GuardHandler(ret_error, [&]() -> int {
    BusContext& ctx = Ctx(userdata);
    const char* name = nullptr;
    int force = 0;
    int r = sd_bus_message_read(m, "sb", &name, &force);
    if (r < 0) return r;
    // Looked up first so an unknown name is NotFound for everyone, and so the signal can
    // carry the record of what was removed.
    Result<VolumeRecord> rec = ctx.volumes().Get(name);
    if (!rec.ok()) return SetBusError(ret_error, rec.status());
    if (Status st = CheckMayMutate(m, "deleting a volume"); !st.ok())
      return SetBusError(ret_error, st);
    // Disconnecting clients and the GC of the volume's entries take a while: on a worker.
    BusContext* c = &ctx;
    return AnswerLater(m, c, [c, rec = *rec, force = force != 0]() -> Result<Answer> {
      BS_RETURN_IF_ERROR(c->volumes().Delete(rec.IdString(), force));
      return Answer([c, rec](PendingReply& call) {
        c->events->VolumeRemoved(rec);
        call.Reply([](sd_bus_message*) { return 0; });
      });
    });
  });
}

int TagVolume(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
  return GuardHandler(ret_error, [&]() -> int {
    BusContext& ctx = Ctx(userdata);
    const char* name = nullptr;
    Tags set;
    std::vector<std::string> unset;
    int r = sd_bus_message_read(m, "s", &name);
    if (r < 0) return r;
    if ((r = ReadTags(m, &set)) < 0) return r;
    if ((r = ReadStrings(m, &unset)) < 0) return r;

    Status st = ValidateTags(set);
    for (const std::string& key : unset)
      if (st.ok()) st = ValidateTag(key, "");
    for (const std::string& key : unset)
      if (st.ok() && set.contains(key))
        st = InvalidArgument("tag '" + key + "' is both set and unset");
    if (!st.ok()) return SetBusError(ret_error, st);

    Result<VolumeRecord> current = ctx.volumes().Get(name);
    if (!current.ok()) return SetBusError(ret_error, current.status());
    bool no_op = true;
    for (const auto& [key, value] : set) {
      auto it = current->tags.find(key);
      if (it == current->tags.end() || it->second != value) no_op = false;
    }
    for (const std::string& key : unset)
      if (current->tags.contains(key)) no_op = false;
    if (no_op) return sd_bus_reply_method_return(m, "");

    if (st = CheckMayMutate(m, "tagging a volume"); !st.ok()) return SetBusError(ret_error, st);
    Result<VolumeRecord> rec = ctx.volumes().Tag(current->IdString(), set, unset);
    if (!rec.ok()) return SetBusError(ret_error, rec.status());
    ctx.events->VolumeChanged(*rec, "Tags");
    return sd_bus_reply_method_return(m, "");
  });
}

// Argument names are NUL-separated and shared by the in and out lists, so a list without
// arguments contributes "" (SD_BUS_PARAM() would add an empty name and shift the others).
const sd_bus_vtable kManagerVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD_WITH_NAMES(
        "CreateVolume", "stta{ss}",
        SD_BUS_PARAM(name) SD_BUS_PARAM(size) SD_BUS_PARAM(chunk_size) SD_BUS_PARAM(tags), "os",
        SD_BUS_PARAM(path) SD_BUS_PARAM(id), CreateVolume, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("ListVolumes", "", "", "aa{sv}", SD_BUS_PARAM(volumes), ListVolumes,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("GetVolume", "s", SD_BUS_PARAM(name), "a{sv}", SD_BUS_PARAM(volume),
                             GetVolume, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("GetVolumePath", "s", SD_BUS_PARAM(name), "o", SD_BUS_PARAM(path),
                             GetVolumePath, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("DeleteVolume", "sb", SD_BUS_PARAM(name) SD_BUS_PARAM(force), "", "",
                             DeleteVolume, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("TagVolume", "sa{ss}as",
                             SD_BUS_PARAM(name) SD_BUS_PARAM(set) SD_BUS_PARAM(unset), "", "",
                             TagVolume, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_SIGNAL_WITH_NAMES("VolumeCreated", "sso",
                             SD_BUS_PARAM(id) SD_BUS_PARAM(name) SD_BUS_PARAM(path), 0),
    SD_BUS_SIGNAL_WITH_NAMES("VolumeRemoved", "sso",
                             SD_BUS_PARAM(id) SD_BUS_PARAM(name) SD_BUS_PARAM(path), 0),
    SD_BUS_VTABLE_END,
};

}  // namespace

int AddManagerObject(sd_bus* bus, BusContext* ctx) {
  return sd_bus_add_object_vtable(bus, nullptr, kManagerPath, kManagerInterface, kManagerVtable,
                                  ctx);
}

}  // namespace blocksnap
