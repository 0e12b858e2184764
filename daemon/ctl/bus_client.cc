#include "ctl/bus_client.h"

#include <cerrno>
#include <cstring>
#include <string_view>

#include "bus/basic_codec.h"
#include "bus/bus_errors.h"
#include "bus/bus_names.h"

namespace blocksnap::ctl {
namespace {

// D-Bus addresses escape every byte outside [A-Za-z0-9_/.\-] as %XX (D-Bus spec,
// "Server Addresses"), so any socket path survives "unix:path=...".
std::string EscapeAddressValue(const std::string& value) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : value) {
    const bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                       c == '_' || c == '/' || c == '.' || c == '-';
    if (plain) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

int ReadClients(sd_bus_message* m, std::vector<ClientEntry>* out) {
  out->clear();
  int r = sd_bus_message_enter_container(m, 'a', "(sss)");
  if (r < 0) return r;
  const char *address = nullptr, *export_name = nullptr, *connected = nullptr;
  while ((r = sd_bus_message_read(m, "(sss)", &address, &export_name, &connected)) > 0)
    out->push_back({address, export_name, connected});
  if (r < 0) return r;
  return sd_bus_message_exit_container(m);
}

// Reads one value of the volume dictionary into the field its key names. Unknown keys and
// unexpected types are skipped, so a newer daemon that adds keys does not break this client.
int ReadDictValue(sd_bus_message* m, const std::string& key, VolumeInfo* v) {
  char type = 0;
  const char* contents = nullptr;
  int r = sd_bus_message_peek_type(m, &type, &contents);
  if (r < 0) return r;
  const std::string sig = contents ? contents : "";
  auto read_string = [&](std::string* dst) {
    const char* s = nullptr;
    int rr = sd_bus_message_read(m, "v", sig.c_str(), &s);
    if (rr >= 0) *dst = s;
    return rr;
  };
  if ((sig == "s" || sig == "o") && key == "Id") return read_string(&v->id);
  if ((sig == "s" || sig == "o") && key == "Name") return read_string(&v->name);
  if ((sig == "s" || sig == "o") && key == "Path") return read_string(&v->path);
  if ((sig == "s" || sig == "o") && key == "State") return read_string(&v->state);
  if ((sig == "s" || sig == "o") && key == "Created") return read_string(&v->created);
  if ((sig == "s" || sig == "o") && key == "Uri") return read_string(&v->uri);
  if (sig == "t" && key == "Size") return sd_bus_message_read(m, "v", "t", &v->size);
  if (sig == "t" && key == "ChunkSize") return sd_bus_message_read(m, "v", "t", &v->chunk_size);
  // [restore]
  if (sig == "s" && key == "OriginSnapshot") return read_string(&v->origin_snapshot);
  if (sig == "t" && key == "HydratedBytes")
    return sd_bus_message_read(m, "v", "t", &v->hydrated_bytes);
  if (sig == "t" && key == "HydrateTotalBytes")
    return sd_bus_message_read(m, "v", "t", &v->hydrate_total_bytes);
  if ((sig == "a{ss}" && key == "Tags") || (sig == "a(sss)" && key == "Clients")) {
    if ((r = sd_bus_message_enter_container(m, 'v', sig.c_str())) < 0) return r;
    r = key == "Tags" ? ReadTags(m, &v->tags) : ReadClients(m, &v->clients);
    if (r < 0) return r;
    return sd_bus_message_exit_container(m);
  }
  return sd_bus_message_skip(m, "v");
}

// Reads one a{sv} volume dictionary: 1 when read, 0 at the end of an enclosing array.
int ReadVolumeDict(sd_bus_message* m, VolumeInfo* v) {
  int r = sd_bus_message_enter_container(m, 'a', "{sv}");
  if (r <= 0) return r;
  while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
    const char* key = nullptr;
    if ((r = sd_bus_message_read(m, "s", &key)) < 0) return r;
    if ((r = ReadDictValue(m, key, v)) < 0) return r;
    if ((r = sd_bus_message_exit_container(m)) < 0) return r;
  }
  if (r < 0) return r;
  r = sd_bus_message_exit_container(m);
  return r < 0 ? r : 1;
}

}  // namespace

Result<std::unique_ptr<BusClient>> BusClient::Connect(const std::string& path) {
  auto fail = [&](int r) {
    return Status(Code::kIOError,
                  "cannot connect to blocksnapd at " + path + ": " + std::strerror(r < 0 ? -r : r));
  };
  RegisterBusErrorMap();
  sd_bus* raw = nullptr;
  int r = sd_bus_new(&raw);
  BusPtr bus(raw);
  if (r < 0) return fail(r);
  const std::string address = "unix:path=" + EscapeAddressValue(path);
  if ((r = sd_bus_set_address(bus.get(), address.c_str())) < 0) return fail(r);
  // A direct connection: no bus daemon, so no Hello and no destination names.
  if ((r = sd_bus_set_bus_client(bus.get(), 0)) < 0) return fail(r);
  // `snapshot dump` passes the file it opened as a unix fd.
  if ((r = sd_bus_negotiate_fds(bus.get(), 1)) < 0) return fail(r);
  if ((r = sd_bus_start(bus.get())) < 0) return fail(r);
  return std::make_unique<BusClient>(std::move(bus), path);
}

Status BusClient::MessageError(int r) const {
  return Status(Code::kInternal,
                std::string("malformed reply from blocksnapd: ") + std::strerror(r < 0 ? -r : r));
}

int BusClient::NewManagerCall(const char* method, sd_bus_message** call) {
  return sd_bus_message_new_method_call(bus_.get(), call, nullptr, kManagerPath, kManagerInterface,
                                        method);
}

Status BusClient::Call(sd_bus_message* call, MessagePtr* reply) {
  BusError error;
  sd_bus_message* answer = nullptr;
  int r = sd_bus_call(bus_.get(), call, 0, error.get(), &answer);
  reply->reset(answer);
  if (r < 0) {
    // sd-bus reports local failures (the connection broke, a timeout) as "System.Error.E…"
    // names made from the errno; only other names are answers from the daemon.
    const bool local = !error.is_set() || std::string_view(error.name()).starts_with("System.");
    if (!local) return StatusFromBusError(error.get(), r);
    return Status(Code::kIOError,
                  "lost the connection to blocksnapd at " + path_ + ": " + std::strerror(-r));
  }
  return Status::Ok();
}

Result<std::string> BusClient::CreateVolume(const CreateVolumeArgs& args) {
  MessagePtr reply;
  BS_RETURN_IF_ERROR(CallManager(
      "CreateVolume",
      [&](sd_bus_message* m) {
        int r = sd_bus_message_append(m, "stt", args.name.c_str(), args.size, args.chunk_size);
        return r < 0 ? r : AppendTags(m, args.tags);
      },
      &reply));
  const char* object = nullptr;
  const char* id = nullptr;
  int r = sd_bus_message_read(reply.get(), "os", &object, &id);
  if (r < 0) return MessageError(r);
  return std::string(id);
}

int NoCallTimeout(sd_bus_message* call) {
  return sd_bus_set_method_call_timeout(sd_bus_message_get_bus(call), UINT64_MAX - 1);
}

Result<std::vector<VolumeInfo>> BusClient::ListVolumes() {
  MessagePtr reply;
  BS_RETURN_IF_ERROR(CallManager(
      "ListVolumes", [](sd_bus_message*) { return 0; }, &reply));
  std::vector<VolumeInfo> out;
  int r = sd_bus_message_enter_container(reply.get(), 'a', "a{sv}");
  if (r < 0) return MessageError(r);
  for (;;) {
    VolumeInfo v;
    r = ReadVolumeDict(reply.get(), &v);
    if (r < 0) return MessageError(r);
    if (r == 0) break;  // end of the array
    out.push_back(std::move(v));
  }
  if ((r = sd_bus_message_exit_container(reply.get())) < 0) return MessageError(r);
  return out;
}

Result<VolumeInfo> BusClient::GetVolume(const std::string& name_or_id) {
  MessagePtr reply;
  BS_RETURN_IF_ERROR(CallManager(
      "GetVolume",
      [&](sd_bus_message* m) { return sd_bus_message_append(m, "s", name_or_id.c_str()); },
      &reply));
  VolumeInfo v;
  if (int r = ReadVolumeDict(reply.get(), &v); r <= 0) return MessageError(r < 0 ? r : -EBADMSG);
  return v;
}

Status BusClient::DeleteVolume(const std::string& name_or_id, bool force) {
  MessagePtr reply;
  return CallManager(
      "DeleteVolume",
      [&](sd_bus_message* m) {
        // Deleting a volume collects its snapshots' garbage on the daemon's loop before it
        // answers, which can take longer than sd-bus' default 25 s: no call timeout.
        int r = NoCallTimeout(m);
        return r < 0 ? r
                     : sd_bus_message_append(m, "sb", name_or_id.c_str(), static_cast<int>(force));
      },
      &reply);
}

Status BusClient::TagVolume(const std::string& name_or_id, const Tags& set,
                            const std::vector<std::string>& unset) {
  MessagePtr reply;
  return CallManager(
      "TagVolume",
      [&](sd_bus_message* m) {
        int r = sd_bus_message_append(m, "s", name_or_id.c_str());
        if (r >= 0) r = AppendTags(m, set);
        if (r >= 0) r = AppendStrings(m, unset);
        return r;
      },
      &reply);
}

}  // namespace blocksnap::ctl
