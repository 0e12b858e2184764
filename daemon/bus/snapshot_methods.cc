// Snapshot method handlers. Each is noexcept (GuardHandler) and answers a failure with the
// named error of its Status. Mutating calls (Create, Delete, Tag, Dump) check the caller's
// authority like the volume calls, after the request has been validated; so do Lock and
// Unlock.
#include "bus/snapshot_methods.h"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bus/basic_codec.h"
#include "bus/bus_names.h"
#include "bus/credentials.h"
#include "bus/snapshot_async.h"
#include "bus/snapshot_codec.h"
#include "bus/snapshot_object.h"
#include "snapshot/snapshot_manager.h"
#include "util/unique_fd.h"

namespace blocksnap {
namespace {

// The userdata of one connection's vtable.
struct Connection {
  BusContext* ctx = nullptr;
  sd_bus* bus = nullptr;
  std::shared_ptr<SnapshotAsync> async;
};

Connection& Conn(void* userdata) {
  return *static_cast<Connection*>(userdata);
}

Result<SnapshotManager*> Snapshots(const Connection& c) {
  SnapshotManager* s = c.ctx->services->snapshots;
  if (s == nullptr) return Busy("the snapshot engine is not running");
  return s;
}

// A snapshot a call names, with the manager that holds it.
struct Found {
  SnapshotManager* snaps = nullptr;
  SnapshotRecord rec;
};

Result<Found> Find(const Connection& c, const char* id) {
  Result<SnapshotManager*> snaps = Snapshots(c);
  if (!snaps.ok()) return snaps.status();
  Result<SnapshotRecord> rec = (*snaps)->Get(id);
  if (!rec.ok()) return rec.status();
  return Found{*snaps, std::move(rec).value()};
}

// The handler of a call whose one argument is a snapshot id ("s"): reads it, finds the
// snapshot and lets body(c, found) answer; a failure on the way is answered here.
template <typename F>
int OnSnapshot(sd_bus_message* m, void* userdata, sd_bus_error* ret_error, F&& body) noexcept {
  return GuardHandler(ret_error, [&]() -> int {
    Connection& c = Conn(userdata);
    const char* id = nullptr;
    int r = sd_bus_message_read(m, "s", &id);
    if (r < 0) return r;
    Result<Found> f = Find(c, id);
    if (!f.ok()) return SetBusError(ret_error, f.status());
    return body(c, *f);
  });
}

// Appends a reply's values; built on a worker, run on the loop.
using Append = std::function<int(sd_bus_message* reply)>;

// Answers call m later (AnswerLater): work runs on a worker thread and returns the reply's
// values or the error, which are sent from the loop. Open to every local user for some
// calls, so the workers are capped.
int ReplyLater(const Connection& c, sd_bus_message* m, std::function<Result<Append>()> work) {
  if (c.async->RunningWorkers() >= SnapshotAsync::kMaxCallWorkers) {
    PendingReply(m).Error(Busy("too many snapshot operations in progress (" +
                               std::to_string(SnapshotAsync::kMaxCallWorkers) +
                               "); retry when one has finished"));
    return 1;
  }
  return AnswerLater(m, c.ctx, [work = std::move(work)]() -> Result<Answer> {
    BS_ASSIGN_OR_RETURN(Append append, work());
    return Answer([append = std::move(append)](PendingReply& call) { call.Reply(append); });
  });
}

int ReplyRecord(sd_bus_message* call, const SnapshotRecord& rec) {
  sd_bus_message* raw = nullptr;
  int r = sd_bus_message_new_method_return(call, &raw);
  MessagePtr reply(raw);
  if (r >= 0) r = AppendSnapshotDict(reply.get(), rec);
  if (r < 0) return r;
  return sd_bus_send(nullptr, reply.get(), nullptr);
}

int CreateSnapshot(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
  return GuardHandler(ret_error, [&]() -> int {
    Connection& c = Conn(userdata);
    const char* volume = nullptr;
    Tags tags;
    int r = sd_bus_message_read(m, "s", &volume);
    if (r < 0) return r;
    if ((r = ReadTags(m, &tags)) < 0) return r;
    Status st;
    for (const auto& [k, v] : tags)
      if (st.ok()) st = ValidateTag(k, v);
    Result<VolumeRecord> vol = c.ctx->volumes().Get(volume);
    if (st.ok() && !vol.ok()) st = vol.status();
    Result<SnapshotManager*> snaps = Snapshots(c);
    if (st.ok() && !snaps.ok()) st = snaps.status();
    if (st.ok()) st = CheckMayMutate(m, "creating a snapshot");
    if (!st.ok()) return SetBusError(ret_error, st);
    // Fixes the point in time (writes are held only for the in-flight ones); the copy runs
    // in the background.
    Result<SnapshotRecord> rec = (*snaps)->Create(vol->id, tags);
    if (!rec.ok()) return SetBusError(ret_error, rec.status());
    // SnapshotCreated, then SnapshotCompleted: c.async is the manager's listener.
    const std::string id = rec->IdString();
    const std::string path = SnapshotObjectPath(id);
    return sd_bus_reply_method_return(m, "os", path.c_str(), id.c_str());
  });
}

int ListSnapshots(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
  return GuardHandler(ret_error, [&]() -> int {
    Connection& c = Conn(userdata);
    const char* volume = nullptr;
    int r = sd_bus_message_read(m, "s", &volume);
    if (r < 0) return r;
    Result<SnapshotManager*> snaps = Snapshots(c);
    if (!snaps.ok()) return SetBusError(ret_error, snaps.status());
    std::string filter = volume;
    std::optional<uint64_t> volume_id;
    if (!filter.empty()) {
      // A live volume by name or id; the name of a deleted one still lists its snapshots.
      if (Result<VolumeRecord> vol = c.ctx->volumes().Get(filter); vol.ok()) volume_id = vol->id;
    }
    Result<std::vector<SnapshotRecord>> list = (*snaps)->List(volume_id);
    if (!list.ok()) return SetBusError(ret_error, list.status());
    sd_bus_message* raw = nullptr;
    r = sd_bus_message_new_method_return(m, &raw);
    MessagePtr reply(raw);
    if (r >= 0) r = sd_bus_message_open_container(reply.get(), 'a', kSnapshotDictSignature);
    size_t matched = 0;
    for (const SnapshotRecord& rec : *list) {
      if (r < 0) break;
      if (!filter.empty() && !volume_id && rec.volume_name != filter &&
          FormatVolumeId(rec.volume_id) != filter)
        continue;
      ++matched;
      r = AppendSnapshotDict(reply.get(), rec);
    }
    if (r >= 0) r = sd_bus_message_close_container(reply.get());
    if (r < 0) return r;
    if (!filter.empty() && !volume_id && matched == 0)
      return SetBusError(ret_error, NotFound("no volume '" + filter + "'"));
    return sd_bus_send(nullptr, reply.get(), nullptr);
  });
}

int GetSnapshot(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
  return OnSnapshot(m, userdata, ret_error,
                    [&](Connection&, const Found& f) { return ReplyRecord(m, f.rec); });
}

int WaitSnapshot(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
  return OnSnapshot(m, userdata, ret_error, [&](Connection& c, const Found& f) {
    if (!f.rec.pending()) return ReplyRecord(m, f.rec);
    c.async->Watch(f.rec.IdString(), std::make_shared<PendingReply>(m));
    return 1;  // answered by the poll timer
  });
}

int DeleteSnapshot(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
  return OnSnapshot(m, userdata, ret_error, [&](Connection& c, const Found& f) {
    if (Status st = CheckMayMutate(m, "deleting a snapshot"); !st.ok())
      return SetBusError(ret_error, st);
    // The GC of a big snapshot takes a while: on a worker. SnapshotRemoved comes from the
    // manager's listener (c.async).
    return AnswerLater(m, c.ctx, [s = f.snaps, id = f.rec.IdString()]() -> Result<Answer> {
      BS_RETURN_IF_ERROR(s->Delete(id));
      return Answer([](PendingReply& call) { call.Reply([](sd_bus_message*) { return 0; }); });
    });
  });
}

int TagSnapshot(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
  return GuardHandler(ret_error, [&]() -> int {
    Connection& c = Conn(userdata);
    const char* id = nullptr;
    Tags set;
    std::vector<std::string> unset;
    int r = sd_bus_message_read(m, "s", &id);
    if (r < 0) return r;
    if ((r = ReadTags(m, &set)) < 0) return r;
    if ((r = ReadStrings(m, &unset)) < 0) return r;
    Status st;
    for (const auto& [k, v] : set)
      if (st.ok()) st = ValidateTag(k, v);
    for (const std::string& k : unset)
      if (st.ok()) st = ValidateTag(k, "");
    for (const std::string& k : unset)
      if (st.ok() && set.contains(k)) st = InvalidArgument("tag '" + k + "' is both set and unset");
    Result<Found> cur = st.ok() ? Find(c, id) : Result<Found>(st);
    if (!cur.ok()) return SetBusError(ret_error, cur.status());
    if (st = CheckMayMutate(m, "tagging a snapshot"); !st.ok()) return SetBusError(ret_error, st);
    Result<SnapshotRecord> rec = cur->snaps->Tag(cur->rec.IdString(), set, unset);
    if (!rec.ok()) return SetBusError(ret_error, rec.status());
    return ReplyRecord(m, *rec);
  });
}

// LockSnapshot / UnlockSnapshot: s id -> a{sv} snapshot.
int SetLocked(sd_bus_message* m, void* userdata, sd_bus_error* ret_error, bool locked) noexcept {
  return OnSnapshot(m, userdata, ret_error, [&](Connection&, const Found& f) {
    if (Status st = CheckMayMutate(m, locked ? "locking a snapshot" : "unlocking a snapshot");
        !st.ok())
      return SetBusError(ret_error, st);
    Result<SnapshotRecord> rec = f.snaps->SetLocked(f.rec.IdString(), locked);
    if (!rec.ok()) return SetBusError(ret_error, rec.status());
    return ReplyRecord(m, *rec);
  });
}

int LockSnapshot(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
  return SetLocked(m, userdata, ret_error, true);
}

int UnlockSnapshot(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
  return SetLocked(m, userdata, ret_error, false);
}

int DumpSnapshot(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
  return GuardHandler(ret_error, [&]() -> int {
    Connection& c = Conn(userdata);
    const char* id = nullptr;
    int fd = -1;  // the message's; sd-bus closes it with the message
    int r = sd_bus_message_read(m, "sh", &id, &fd);
    if (r < 0) return r;
    Result<Found> f = Find(c, id);
    if (!f.ok()) return SetBusError(ret_error, f.status());
    if (Status st = CheckMayMutate(m, "dumping a snapshot"); !st.ok())
      return SetBusError(ret_error, st);
    // Our own copy for the worker: the caller opened the file (its identity, its namespace);
    // the daemon only writes to it.
    auto out = std::make_shared<UniqueFd>(::fcntl(fd, F_DUPFD_CLOEXEC, 3));
    if (!*out) return SetBusError(ret_error, FromErrno(errno, "taking the dump fd"));
    return ReplyLater(c, m, [s = f->snaps, sid = f->rec.IdString(), out]() -> Result<Append> {
      Status done = s->Dump(sid, out->get());
      // Closed before the reply: a pipe's reader sees EOF once the caller closes its end.
      out->reset();
      if (!done.ok()) return done;
      return Append([](sd_bus_message*) { return 0; });
    });
  });
}

int VerifySnapshot(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
  return OnSnapshot(m, userdata, ret_error, [&](Connection& c, const Found& f) {
    return ReplyLater(c, m, [s = f.snaps, sid = f.rec.IdString()]() -> Result<Append> {
      Result<VerifyReport> report = s->Verify(sid);
      if (!report.ok()) return report.status();
      return Append([v = std::move(report).value()](sd_bus_message* reply) {
        int e = sd_bus_message_append(reply, "b", v.ok() ? 1 : 0);
        if (e >= 0) e = sd_bus_message_open_container(reply, 'a', "(ts)");
        for (const BadChunk& b : v.bad) {
          if (e < 0) break;
          const std::string what = b.hash + ": " + b.problem;
          e = sd_bus_message_append(reply, "(ts)", b.chunk, what.c_str());
        }
        if (e >= 0) e = sd_bus_message_close_container(reply);
        return e;
      });
    });
  });
}

int DiffSnapshots(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
  return GuardHandler(ret_error, [&]() -> int {
    Connection& c = Conn(userdata);
    const char* from = nullptr;
    const char* to = nullptr;
    int r = sd_bus_message_read(m, "ss", &from, &to);
    if (r < 0) return r;
    Result<Found> a = Find(c, from);
    if (!a.ok()) return SetBusError(ret_error, a.status());
    SnapshotManager* s = a->snaps;
    std::string f = from, t = to;
    const uint64_t chunk = a->rec.chunk_size, size = a->rec.size;
    return ReplyLater(c, m, [s, f, t, chunk, size]() -> Result<Append> {
      Result<std::vector<uint64_t>> chunks = s->Diff(f, t);
      if (!chunks.ok()) return chunks.status();
      // Changed chunks as byte ranges, adjacent ones merged, the last clamped to the size.
      std::vector<std::pair<uint64_t, uint64_t>> runs;
      for (uint64_t idx : *chunks) {
        const uint64_t off = idx * chunk;
        const uint64_t len = std::min(chunk, size > off ? size - off : 0);
        if (len == 0) continue;
        if (!runs.empty() && runs.back().first + runs.back().second == off)
          runs.back().second += len;
        else
          runs.emplace_back(off, len);
      }
      return Append([runs = std::move(runs)](sd_bus_message* reply) {
        int e = sd_bus_message_open_container(reply, 'a', "(tt)");
        for (const auto& [off, len] : runs) {
          if (e < 0) break;
          e = sd_bus_message_append(reply, "(tt)", off, len);
        }
        if (e >= 0) e = sd_bus_message_close_container(reply);
        return e;
      });
    });
  });
}

int GetStatus(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
  return GuardHandler(ret_error, [&]() -> int {
    Connection& c = Conn(userdata);
    Result<SnapshotManager*> snaps = Snapshots(c);
    if (!snaps.ok()) return SetBusError(ret_error, snaps.status());
    SnapshotManager* s = *snaps;
    const uint64_t volumes = c.ctx->volumes().List().size();
    return ReplyLater(c, m, [s, volumes]() -> Result<Append> {
      Result<StoreStats> stats = s->Stats();
      Result<std::vector<SnapshotRecord>> list = s->List();
      if (!stats.ok()) return stats.status();
      if (!list.ok()) return list.status();
      return Append([doc = StatusJson(*stats, list->size(), volumes)](sd_bus_message* reply) {
        return AppendJsonDict(reply, doc);
      });
    });
  });
}

const sd_bus_vtable kSnapshotVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD_WITH_NAMES("CreateSnapshot", "sa{ss}", SD_BUS_PARAM(volume) SD_BUS_PARAM(tags),
                             "os", SD_BUS_PARAM(path) SD_BUS_PARAM(id), CreateSnapshot,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("ListSnapshots", "s", SD_BUS_PARAM(volume), "aa{sv}",
                             SD_BUS_PARAM(snapshots), ListSnapshots, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("GetSnapshot", "s", SD_BUS_PARAM(id), "a{sv}", SD_BUS_PARAM(snapshot),
                             GetSnapshot, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("WaitSnapshot", "s", SD_BUS_PARAM(id), "a{sv}", SD_BUS_PARAM(snapshot),
                             WaitSnapshot, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("DeleteSnapshot", "s", SD_BUS_PARAM(id), "", "", DeleteSnapshot,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("TagSnapshot", "sa{ss}as",
                             SD_BUS_PARAM(id) SD_BUS_PARAM(set) SD_BUS_PARAM(unset), "a{sv}",
                             SD_BUS_PARAM(snapshot), TagSnapshot, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("LockSnapshot", "s", SD_BUS_PARAM(id), "a{sv}", SD_BUS_PARAM(snapshot),
                             LockSnapshot, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("UnlockSnapshot", "s", SD_BUS_PARAM(id), "a{sv}",
                             SD_BUS_PARAM(snapshot), UnlockSnapshot, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("DumpSnapshot", "sh", SD_BUS_PARAM(id) SD_BUS_PARAM(fd), "", "",
                             DumpSnapshot, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("VerifySnapshot", "s", SD_BUS_PARAM(id), "ba(ts)",
                             SD_BUS_PARAM(ok) SD_BUS_PARAM(bad), VerifySnapshot,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("DiffSnapshots", "ss", SD_BUS_PARAM(from) SD_BUS_PARAM(to), "a(tt)",
                             SD_BUS_PARAM(ranges), DiffSnapshots, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("GetStatus", "", "", "a{sv}", SD_BUS_PARAM(status), GetStatus,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_SIGNAL_WITH_NAMES("SnapshotCreated", "sss",
                             SD_BUS_PARAM(id) SD_BUS_PARAM(volume) SD_BUS_PARAM(state), 0),
    SD_BUS_SIGNAL_WITH_NAMES("SnapshotCompleted", "sss",
                             SD_BUS_PARAM(id) SD_BUS_PARAM(volume) SD_BUS_PARAM(state), 0),
    SD_BUS_SIGNAL_WITH_NAMES("SnapshotRemoved", "sss",
                             SD_BUS_PARAM(id) SD_BUS_PARAM(volume) SD_BUS_PARAM(state), 0),
    SD_BUS_VTABLE_END,
};

void DestroyConnection(void* userdata) noexcept {
  auto* c = static_cast<Connection*>(userdata);
  c->async->RemoveConnection(c->bus);
  delete c;  // may destroy the SnapshotAsync (the last connection): joins its workers
}

}  // namespace

int AddSnapshotMethods(sd_bus* bus, BusContext* ctx) {
  if (int r = AddSnapshotObjects(bus, ctx); r < 0) return r;
  sd_event* event = sd_bus_get_event(bus);
  if (event == nullptr) return -ENXIO;
  Result<std::shared_ptr<SnapshotAsync>> async = SnapshotAsync::For(ctx, event);
  if (!async.ok()) return -EIO;
  auto conn = std::make_unique<Connection>(Connection{ctx, bus, *async});
  sd_bus_slot* slot = nullptr;
  int r = sd_bus_add_object_vtable(bus, &slot, kManagerPath, kManagerInterface, kSnapshotVtable,
                                   conn.get());
  if (r < 0) return r;
  (*async)->AddConnection(bus);
  sd_bus_slot_set_destroy_callback(slot, DestroyConnection);
  // Floating: the connection owns the slot (and its destroy callback frees conn).
  sd_bus_slot_set_floating(slot, 1);
  sd_bus_slot_unref(slot);
  conn.release();
  return 0;
}

}  // namespace blocksnap
