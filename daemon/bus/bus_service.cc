#include "bus/bus_service.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <vector>

#include "bus/bus_errors.h"
#include "bus/bus_names.h"
#include "bus/control_socket.h"
#include "bus/manager_object.h"
#include "bus/policy_methods.h"    // policy scheduler
#include "bus/restore_methods.h"   // [restore]
#include "bus/snapshot_methods.h"  // snapshots
#include "bus/volume_object.h"

namespace blocksnap {
namespace {

Status FromBusErrno(int r, const std::string& what) {
  return FromErrno(r < 0 ? -r : r, what);
}

}  // namespace

BusService::BusService(PrivateTag, sd_event* event, const BusOptions& options, Services& services)
    : event_(event), options_(options) {
  context_.services = &services;
  context_.nbd_uri_base = options.nbd_uri_base;
  while (!context_.nbd_uri_base.empty() && context_.nbd_uri_base.back() == '/')
    context_.nbd_uri_base.pop_back();
  context_.events = this;
}

Result<std::unique_ptr<BusService>> BusService::Start(sd_event* event, const BusOptions& options,
                                                      Services& services) {
  if (event == nullptr || services.volumes == nullptr)
    return Internal("the control plane needs an event loop and a volume manager");
  const std::string& mode = options.bus;
  if (mode != "auto" && mode != "system" && mode != "user" && mode != "none")
    return InvalidArgument("invalid bus '" + mode + "': use auto, system, user or none");
  RegisterBusErrorMap();

  auto service = std::make_unique<BusService>(PrivateTag{}, event, options, services);
  int r = sd_id128_randomize(&service->server_id_);
  if (r < 0) return FromBusErrno(r, "generating the control socket's server id");
  BS_RETURN_IF_ERROR(service->ListenPrivate());
  BS_RETURN_IF_ERROR(service->ConnectBus());
  return service;
}

BusService::~BusService() {
  accept_source_.reset();
  post_source_.reset();
  peers_.clear();
  bus_.reset();
  listen_fd_.reset();
  struct stat st {};
  if (socket_bound_ && lstat(options_.control_path.c_str(), &st) == 0 && st.st_dev == socket_dev_ &&
      st.st_ino == socket_ino_)
    unlink(options_.control_path.c_str());
}

Status BusService::ListenPrivate() {
  Result<UniqueFd> fd = ListenControlSocket(options_.control_path);
  if (!fd.ok()) return fd.status();
  listen_fd_ = std::move(fd).value();
  struct stat st {};
  if (lstat(options_.control_path.c_str(), &st) == 0) {
    socket_bound_ = true;
    socket_dev_ = st.st_dev;
    socket_ino_ = st.st_ino;
  }
  sd_event_source* raw = nullptr;
  int r = sd_event_add_io(event_, &raw, listen_fd_.get(), EPOLLIN, OnAcceptReady, this);
  if (r < 0) return FromBusErrno(r, "watching the control socket");
  accept_source_.reset(raw);
  sd_event_source_set_description(raw, "control-socket");
  r = sd_event_add_post(event_, &raw, OnPostIteration, this);
  if (r < 0) return FromBusErrno(r, "watching the control connections");
  post_source_.reset(raw);
  spdlog::info("control socket listening on {}", options_.control_path);
  return Status::Ok();
}

Status BusService::ConnectBus() {
  const std::string& mode = options_.bus;
  if (mode == "none") return Status::Ok();
  const bool system = mode == "system" || (mode == "auto" && geteuid() == 0);
  const std::string which = system ? "system" : "user";

  sd_bus* raw = nullptr;
  int r = system ? sd_bus_open_system(&raw) : sd_bus_open_user(&raw);
  BusPtr bus(raw);
  Status st;
  if (r < 0) {
    st = FromBusErrno(r, "connecting to the " + which + " bus");
  } else if ((r = sd_bus_attach_event(bus.get(), event_, SD_EVENT_PRIORITY_NORMAL)) < 0 ||
             (r = Serve(bus.get())) < 0) {
    st = FromBusErrno(r, "serving on the " + which + " bus");
  } else if ((r = sd_bus_request_name(bus.get(), kBusName, 0)) < 0) {
    // -EEXIST: another process owns it; -EACCES: the bus policy (units/) does not allow us.
    st = r == -EEXIST ? Busy(std::string("the name ") + kBusName + " is already owned on the " +
                             which + " bus")
                      : FromBusErrno(r, std::string("requesting the name ") + kBusName +
                                            " on the " + which + " bus");
  }
  if (!st.ok()) {
    if (mode == "auto") {
      spdlog::info("not on a bus ({}), serving the control socket only", st.message());
      return Status::Ok();
    }
    return st;
  }
  bus_ = std::move(bus);
  spdlog::info("serving {} on the {} bus", kBusName, which);
  return Status::Ok();
}

// Everything each connection serves, one registration function per file. A later part of
// the API (snapshots, policies) adds its function here; its methods may join
// org.blocksnap1.Manager with a vtable of their own, as sd-bus merges several vtables of one
// interface on one path (member names must differ).
using ObjectRegistrar = int (*)(sd_bus* bus, BusContext* ctx);
constexpr ObjectRegistrar kObjectRegistrars[] = {AddManagerObject, AddVolumeObjects,
                                                 AddPolicyMethods,
                                                 AddSnapshotMethods,  // snapshots
                                                 AddRestoreMethods};  // [restore]

int BusService::Serve(sd_bus* bus) {
  int r = 0;
  for (ObjectRegistrar add : kObjectRegistrars)
    if ((r = add(bus, &context_)) < 0) return r;
  // org.freedesktop.DBus.ObjectManager at the root: GetManagedObjects lists every volume with
  // its properties in one call, and InterfacesAdded/Removed follow VolumeCreated/Removed.
  if ((r = sd_bus_add_object_manager(bus, nullptr, kManagerPath)) < 0) return r;
  // sd-bus synthesizes this local signal when the peer goes away; it is never sent over the
  // wire, so matching it installs nothing on a bus daemon.
  return sd_bus_match_signal(bus, nullptr, "org.freedesktop.DBus.Local",
                             "/org/freedesktop/DBus/Local", "org.freedesktop.DBus.Local",
                             "Disconnected", OnDisconnected, this);
}

int BusService::OnAcceptReady(sd_event_source* /*source*/, int /*fd*/, uint32_t /*revents*/,
                              void* userdata) noexcept {
  try {
    static_cast<BusService*>(userdata)->AcceptPeer();
  } catch (const std::exception& e) {
    spdlog::warn("accepting a control connection: {}, ignoring", e.what());
  }
  return 0;  // never fail the event source: that would stop all future accepts
}

void BusService::AcceptPeer() {
  UniqueFd fd(accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  if (!fd) {
    const int err = errno;
    if (err == EMFILE || err == ENFILE) {
      // The pending connection stays queued and would wake us in a busy loop: stop
      // accepting until a peer goes away (OnDisconnected turns accepting back on).
      spdlog::warn("accepting a control connection: {}, pausing until one closes",
                   std::strerror(err));
      sd_event_source_set_enabled(accept_source_.get(), SD_EVENT_OFF);
    } else if (err != EAGAIN && err != EINTR && err != ECONNABORTED) {
      spdlog::warn("accepting a control connection: {}, ignoring", std::strerror(err));
    }
    return;
  }
  sd_bus* raw = nullptr;
  int r = sd_bus_new(&raw);
  BusPtr bus(raw);
  if (r >= 0 && (r = sd_bus_set_fd(bus.get(), fd.get(), fd.get())) >= 0) fd.release();
  // Server side of a direct connection: no bus name (OnPeerHello answers clients that say
  // Hello anyway). Anonymous authentication is accepted besides EXTERNAL because permission
  // is checked per call from SO_PEERCRED, not at connect time.
  if (r >= 0) r = sd_bus_set_server(bus.get(), 1, server_id_);
  if (r >= 0) r = sd_bus_set_anonymous(bus.get(), 1);
  // DumpSnapshot takes the caller's fd ('h'): accept unix fds (sd-bus' default, stated here).
  if (r >= 0) r = sd_bus_negotiate_fds(bus.get(), 1);
  // Replies and signals carry our well-known name as sender, as on a bus: libdbus clients
  // (dbus-send --peer --dest=org.blocksnap1) drop replies whose sender is not the
  // destination they called. systemd does the same on its private socket.
  if (r >= 0) r = sd_bus_set_sender(bus.get(), kBusName);
  if (r >= 0) r = sd_bus_set_description(bus.get(), "control-peer");
  if (r >= 0) r = sd_bus_start(bus.get());
  if (r >= 0) r = sd_bus_attach_event(bus.get(), event_, SD_EVENT_PRIORITY_NORMAL);
  if (r >= 0) r = Serve(bus.get());
  if (r >= 0) r = sd_bus_add_filter(bus.get(), nullptr, OnPeerHello, this);
  if (r < 0) {
    spdlog::warn("setting up a control connection: {}, ignoring", std::strerror(-r));
    return;
  }
  spdlog::debug("control connection accepted ({} open)", peers_.size() + 1);
  sd_bus* key = bus.get();
  context_.quiet_peers.insert(key);
  peers_.emplace(key, std::move(bus));
}

// Works around sd-bus (systemd 252) on the server side: a client that sends its first call
// right behind the "BEGIN" of the authentication (libdbus' dbus-send does) has that call read
// into sd-bus' input buffer together with BEGIN, and sd-bus does not look at the buffer again
// until the socket wakes it, which never happens since the client waits for the reply. So
// after every loop iteration that dispatched something, each peer connection gets one more
// sd_bus_process(); with nothing buffered it returns 0 at once.
int BusService::OnPostIteration(sd_event_source* /*source*/, void* userdata) noexcept {
  auto* self = static_cast<BusService*>(userdata);
  try {
    std::vector<sd_bus*> buses;
    buses.reserve(self->peers_.size());
    for (auto& [raw, owned] : self->peers_) buses.push_back(raw);
    for (sd_bus* bus : buses) {
      // Processing may run OnDisconnected, which drops the connection: hold a reference.
      if (!self->peers_.contains(bus)) continue;
      sd_bus* ref = sd_bus_ref(bus);
      for (int i = 0; i < 64 && sd_bus_process(ref, nullptr) > 0; ++i) {
      }
      sd_bus_unref(ref);
    }
  } catch (const std::exception& e) {
    spdlog::warn("processing control connections: {}, ignoring", e.what());
  }
  return 0;
}

// busctl (and any sd-bus or libdbus client opened as a bus client) starts every connection
// with org.freedesktop.DBus.Hello and gives up unless it gets a unique name back. Answering
// just that call, with a name of our making, lets `busctl --address=unix:path=CONTROL`
// introspect, call and read properties on the private socket. No other bus-daemon method is
// emulated; a filter rather than an object keeps /org/freedesktop/DBus out of the tree.
int BusService::OnPeerHello(sd_bus_message* m, void* userdata,
                            sd_bus_error* /*ret_error*/) noexcept {
  auto* self = static_cast<BusService*>(userdata);
  // Its first message, Hello or not: from now on the peer may get signals (after the Hello
  // reply below, when it is one).
  self->context_.quiet_peers.erase(sd_bus_message_get_bus(m));
  if (!sd_bus_message_is_method_call(m, "org.freedesktop.DBus", "Hello") ||
      std::string_view(sd_bus_message_get_path(m) ? sd_bus_message_get_path(m) : "") !=
          "/org/freedesktop/DBus")
    return 0;  // not ours: let sd-bus dispatch it
  const std::string unique = ":1." + std::to_string(++self->hello_count_);
  int r = sd_bus_reply_method_return(m, "s", unique.c_str());
  if (r < 0) spdlog::debug("answering Hello: {}, ignoring", std::strerror(-r));
  return 1;  // handled
}

int BusService::OnDisconnected(sd_bus_message* m, void* userdata,
                               sd_bus_error* /*ret_error*/) noexcept {
  auto* self = static_cast<BusService*>(userdata);
  sd_bus* bus = sd_bus_message_get_bus(m);
  // Dropping the connection here is safe: sd-bus holds a reference while it dispatches.
  if (self->bus_ && bus == self->bus_.get()) {
    spdlog::warn("lost the connection to the bus, serving the control socket only");
    self->bus_.reset();
  } else if (self->peers_.erase(bus) > 0) {
    self->context_.quiet_peers.erase(bus);
    spdlog::debug("control connection closed ({} open)", self->peers_.size());
    if (self->accept_source_) sd_event_source_set_enabled(self->accept_source_.get(), SD_EVENT_ON);
  }
  return 0;
}

void BusService::ForEachConnection(const char* what, const std::function<int(sd_bus*)>& emit) {
  auto one = [&](sd_bus* bus) {
    // A peer whose queue is full or that is going away misses a signal; that is its problem,
    // never a reason to fail the call that caused it.
    if (int r = emit(bus); r < 0)
      spdlog::debug("emitting {}: {}, ignoring", what, std::strerror(-r));
  };
  if (bus_) one(bus_.get());
  for (auto& [raw, owned] : peers_)
    if (context_.MaySignal(raw)) one(raw);
}

void BusService::EmitVolumeSignal(const char* member, const VolumeRecord& record) {
  const std::string id = record.IdString();
  const std::string path = VolumeObjectPath(id);
  ForEachConnection(member, [&](sd_bus* bus) {
    return sd_bus_emit_signal(bus, kManagerPath, kManagerInterface, member, "sso", id.c_str(),
                              record.name.c_str(), path.c_str());
  });
}

void BusService::VolumeCreated(const VolumeRecord& record) {
  EmitVolumeSignal("VolumeCreated", record);
  const std::string path = VolumeObjectPath(record.IdString());
  ForEachConnection("InterfacesAdded",
                    [&](sd_bus* bus) { return sd_bus_emit_object_added(bus, path.c_str()); });
}

void BusService::VolumeRemoved(const VolumeRecord& record) {
  EmitVolumeSignal("VolumeRemoved", record);
  // Written out rather than sd_bus_emit_object_removed(), which asks the (now empty) fallback
  // which interfaces the object had: the volume is already gone.
  const std::string path = VolumeObjectPath(record.IdString());
  ForEachConnection("InterfacesRemoved", [&](sd_bus* bus) {
    return sd_bus_emit_signal(bus, kManagerPath, "org.freedesktop.DBus.ObjectManager",
                              "InterfacesRemoved", "oas", path.c_str(), 4, kVolumeInterface,
                              "org.freedesktop.DBus.Peer", "org.freedesktop.DBus.Introspectable",
                              "org.freedesktop.DBus.Properties");
  });
}

void BusService::VolumeChanged(const VolumeRecord& record, const char* property) {
  const std::string path = VolumeObjectPath(record.IdString());
  ForEachConnection("PropertiesChanged", [&](sd_bus* bus) {
    return sd_bus_emit_properties_changed(bus, path.c_str(), kVolumeInterface, property, nullptr);
  });
}

}  // namespace blocksnap
