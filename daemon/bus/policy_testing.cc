// The test-only interface (blocksnapd --test-clock). Mutating methods check authority like
// every other; CreateSnapshot runs on the scheduler's worker so it never overlaps a round.
#include "bus/policy_testing.h"

#include <string>

#include "bus/basic_codec.h"
#include "bus/bus_context.h"
#include "bus/bus_names.h"
#include "bus/credentials.h"
#include "bus/policy_reply.h"
#include "scheduler/snapshot_executor.h"

namespace blocksnap {
namespace {

int SetTime(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
  return GuardHandler(ret_error, [&]() -> int {
    const char* text = nullptr;
    int r = sd_bus_message_read(m, "s", &text);
    if (r < 0) return r;
    policy::TimePoint t;
    if (!policy::ParseTimestamp(text, &t))
      return SetBusError(ret_error,
                         InvalidArgument("'" + std::string(text) + "' is not an RFC 3339 time"));
    Result<scheduler::Scheduler*> s = Sched(userdata);
    if (!s.ok()) return SetBusError(ret_error, s.status());
    if (Status st = CheckMayMutate(m, "setting the test clock"); !st.ok())
      return SetBusError(ret_error, st);
    Status st = (*s)->SetTime(t, ReplyActions(m));
    if (!st.ok()) return SetBusError(ret_error, st);
    return 1;
  });
}

int CreateSnapshot(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
  return GuardHandler(ret_error, [&]() -> int {
    const char* volume = nullptr;
    Tags tags;
    int r = sd_bus_message_read(m, "s", &volume);
    if (r < 0) return r;
    if ((r = ReadTags(m, &tags)) < 0) return r;
    Result<scheduler::Scheduler*> s = Sched(userdata);
    if (!s.ok()) return SetBusError(ret_error, s.status());
    if (Status st = CheckMayMutate(m, "creating a snapshot"); !st.ok())
      return SetBusError(ret_error, st);
    scheduler::Scheduler* sched = *s;
    auto pending = std::make_shared<PendingReply>(m);
    std::string name = volume;
    sched->OnWorker([sched, pending, name, tags]() -> std::function<void()> {
      Result<std::shared_ptr<Volume>> vol = sched->volumes().Find(name);
      Result<SnapshotRecord> rec =
          vol.ok() ? Result<SnapshotRecord>(Internal("")) : Result<SnapshotRecord>(vol.status());
      if (vol.ok()) {
        // Every volume is attached to the snapshot engine by SnapshotWiring.
        rec = sched->snapshots().Create((*vol)->id(), tags);
        if (rec.ok()) rec = sched->snapshots().Wait(rec->IdString());
      }
      return [pending, rec = std::move(rec)] {
        if (!rec.ok()) return pending->Error(rec.status());
        const std::string id = rec->IdString();
        pending->Reply(
            [&](sd_bus_message* reply) { return sd_bus_message_append(reply, "s", id.c_str()); });
      };
    });
    return 1;
  });
}

int ListSnapshots(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
  return GuardHandler(ret_error, [&]() -> int {
    Result<scheduler::Scheduler*> s = Sched(userdata);
    if (!s.ok()) return SetBusError(ret_error, s.status());
    Result<std::vector<SnapshotRecord>> list = (*s)->snapshots().List();
    if (!list.ok()) return SetBusError(ret_error, list.status());
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_return(m, &raw);
    MessagePtr reply(raw);
    if (r >= 0) r = sd_bus_message_open_container(reply.get(), 'a', "(sssssa{ss})");
    for (const SnapshotRecord& rec : *list) {
      if (r < 0) break;
      r = sd_bus_message_open_container(reply.get(), 'r', "sssssa{ss}");
      if (r >= 0)
        r = sd_bus_message_append(reply.get(), "sssss", rec.IdString().c_str(),
                                  FormatVolumeId(rec.volume_id).c_str(), rec.volume_name.c_str(),
                                  rec.state.c_str(), FormatRfc3339(rec.created).c_str());
      if (r >= 0) r = AppendTags(reply.get(), rec.tags);
      if (r >= 0) r = sd_bus_message_close_container(reply.get());
    }
    if (r >= 0) r = sd_bus_message_close_container(reply.get());
    if (r < 0) return r;
    return sd_bus_send(nullptr, reply.get(), nullptr);
  });
}

const sd_bus_vtable kTestingVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD_WITH_NAMES("SetTime", "s", SD_BUS_PARAM(time), "aa{sv}", SD_BUS_PARAM(actions),
                             SetTime, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("CreateSnapshot", "sa{ss}", SD_BUS_PARAM(volume) SD_BUS_PARAM(tags),
                             "s", SD_BUS_PARAM(id), CreateSnapshot, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("ListSnapshots", "", "", "a(sssssa{ss})", SD_BUS_PARAM(snapshots),
                             ListSnapshots, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

}  // namespace

int AddTestingObject(sd_bus* bus, Services* services) {
  return sd_bus_add_object_vtable(bus, nullptr, kManagerPath, kTestingInterface, kTestingVtable,
                                  services);
}

}  // namespace blocksnap
