#include "ctl/snapshot_client.h"

#include <cerrno>
#include <cstdint>

#include "bus/basic_codec.h"
#include "ctl/dict_json.h"

namespace blocksnap::ctl {
namespace {

int ReadDict(sd_bus_message* m, SnapJson* out) {
  return ReadDictJson(m, out, /*snake_case_keys=*/false);
}

// Calls a method whose answer is one a{sv}.
template <typename F>
Result<SnapJson> CallDict(BusClient& c, const char* method, F&& append) {
  MessagePtr reply;
  BS_RETURN_IF_ERROR(c.CallManager(method, std::forward<F>(append), &reply));
  SnapJson doc;
  if (int r = ReadDict(reply.get(), &doc); r < 0) return c.MessageError(r);
  return doc;
}

}  // namespace

Result<std::string> CreateSnapshot(BusClient& c, const std::string& volume, const Tags& tags) {
  MessagePtr reply;
  BS_RETURN_IF_ERROR(c.CallManager(
      "CreateSnapshot",
      [&](sd_bus_message* m) {
        int r = sd_bus_message_append(m, "s", volume.c_str());
        return r < 0 ? r : AppendTags(m, tags);
      },
      &reply));
  const char* path = nullptr;
  const char* id = nullptr;
  if (int r = sd_bus_message_read(reply.get(), "os", &path, &id); r < 0) return c.MessageError(r);
  return std::string(id);
}

Result<SnapJson> ListSnapshots(BusClient& c, const std::string& volume) {
  MessagePtr reply;
  BS_RETURN_IF_ERROR(c.CallManager(
      "ListSnapshots",
      [&](sd_bus_message* m) { return sd_bus_message_append(m, "s", volume.c_str()); }, &reply));
  SnapJson out = SnapJson::array();
  int r = sd_bus_message_enter_container(reply.get(), 'a', "a{sv}");
  while (r >= 0 && (r = sd_bus_message_at_end(reply.get(), false)) == 0) {
    SnapJson item;
    if ((r = ReadDict(reply.get(), &item)) < 0) break;
    out.push_back(std::move(item));
  }
  if (r >= 0) r = sd_bus_message_exit_container(reply.get());
  if (r < 0) return c.MessageError(r);
  return out;
}

Result<SnapJson> GetSnapshot(BusClient& c, const std::string& id) {
  return CallDict(c, "GetSnapshot",
                  [&](sd_bus_message* m) { return sd_bus_message_append(m, "s", id.c_str()); });
}

Result<SnapJson> WaitSnapshot(BusClient& c, const std::string& id) {
  return CallDict(c, "WaitSnapshot", [&](sd_bus_message* m) {
    int r = NoCallTimeout(m);
    return r < 0 ? r : sd_bus_message_append(m, "s", id.c_str());
  });
}

Status DeleteSnapshot(BusClient& c, const std::string& id) {
  MessagePtr reply;
  return c.CallManager(
      "DeleteSnapshot",
      [&](sd_bus_message* m) {
        // Freeing the chunks no one else reads takes as long as the snapshot is big.
        int r = NoCallTimeout(m);
        return r < 0 ? r : sd_bus_message_append(m, "s", id.c_str());
      },
      &reply);
}

Result<SnapJson> TagSnapshot(BusClient& c, const std::string& id, const Tags& set,
                             const std::vector<std::string>& unset) {
  return CallDict(c, "TagSnapshot", [&](sd_bus_message* m) {
    int r = sd_bus_message_append(m, "s", id.c_str());
    if (r >= 0) r = AppendTags(m, set);
    if (r >= 0) r = AppendStrings(m, unset);
    return r;
  });
}

Result<SnapJson> SetSnapshotLocked(BusClient& c, const std::string& id, bool locked) {
  return CallDict(c, locked ? "LockSnapshot" : "UnlockSnapshot",
                  [&](sd_bus_message* m) { return sd_bus_message_append(m, "s", id.c_str()); });
}

Status DumpSnapshot(BusClient& c, const std::string& id, int fd) {
  MessagePtr reply;
  bool no_fds = false;
  Status st = c.CallManager(
      "DumpSnapshot",
      [&](sd_bus_message* m) {
        if (sd_bus_can_send(sd_bus_message_get_bus(m), SD_BUS_TYPE_UNIX_FD) <= 0) {
          no_fds = true;
          return -ENOTSUP;
        }
        int r = NoCallTimeout(m);
        return r < 0 ? r : sd_bus_message_append(m, "sh", id.c_str(), fd);
      },
      &reply);
  if (no_fds) return IOError("the connection to blocksnapd cannot pass file descriptors");
  return st;
}

Result<VerifyResult> VerifySnapshot(BusClient& c, const std::string& id) {
  MessagePtr reply;
  BS_RETURN_IF_ERROR(c.CallManager(
      "VerifySnapshot",
      [&](sd_bus_message* m) {
        int r = NoCallTimeout(m);
        return r < 0 ? r : sd_bus_message_append(m, "s", id.c_str());
      },
      &reply));
  VerifyResult out;
  int ok = 0;
  int r = sd_bus_message_read(reply.get(), "b", &ok);
  out.ok = ok != 0;
  if (r >= 0) r = sd_bus_message_enter_container(reply.get(), 'a', "(ts)");
  uint64_t chunk = 0;
  const char* problem = nullptr;
  while (r >= 0 && (r = sd_bus_message_read(reply.get(), "(ts)", &chunk, &problem)) > 0)
    out.bad.push_back({chunk, problem});
  if (r >= 0) r = sd_bus_message_exit_container(reply.get());
  if (r < 0) return c.MessageError(r);
  return out;
}

Result<std::vector<std::pair<uint64_t, uint64_t>>> DiffSnapshots(BusClient& c,
                                                                 const std::string& from,
                                                                 const std::string& to) {
  MessagePtr reply;
  BS_RETURN_IF_ERROR(c.CallManager(
      "DiffSnapshots",
      [&](sd_bus_message* m) {
        int r = NoCallTimeout(m);
        return r < 0 ? r : sd_bus_message_append(m, "ss", from.c_str(), to.c_str());
      },
      &reply));
  std::vector<std::pair<uint64_t, uint64_t>> out;
  int r = sd_bus_message_enter_container(reply.get(), 'a', "(tt)");
  uint64_t off = 0, len = 0;
  while (r >= 0 && (r = sd_bus_message_read(reply.get(), "(tt)", &off, &len)) > 0)
    out.emplace_back(off, len);
  if (r >= 0) r = sd_bus_message_exit_container(reply.get());
  if (r < 0) return c.MessageError(r);
  return out;
}

Result<SnapJson> GetStatus(BusClient& c) {
  return CallDict(c, "GetStatus", [](sd_bus_message*) { return 0; });
}

}  // namespace blocksnap::ctl
