// BusContext: what the vtable handlers of every connection share (the userdata of the
// Manager and Volume vtables), and the exception guard every handler runs its body in.
#pragma once

#include <systemd/sd-bus.h>

#include <exception>
#include <set>
#include <string>
#include <vector>

#include "bus/bus_errors.h"
#include "services.h"
#include "volume/volume_manager.h"

namespace blocksnap {

// Told about every successful mutation so it can signal all connections. Implemented by
// BusService, which owns the connections.
class BusEvents {
 public:
  virtual ~BusEvents() = default;
  virtual void VolumeCreated(const VolumeRecord& record) = 0;
  virtual void VolumeRemoved(const VolumeRecord& record) = 0;
  // `property` of the volume's object changed (PropertiesChanged).
  virtual void VolumeChanged(const VolumeRecord& record, const char* property) = 0;
};

struct BusContext {
  Services* services = nullptr;
  // "nbd://127.0.0.1:10809" (no trailing slash); empty when no NBD listener is configured.
  std::string nbd_uri_base;
  BusEvents* events = nullptr;
  // Control-socket peers that have sent nothing yet. A client opened as a bus client (busctl)
  // starts with Hello and drops the connection (EIO) if anything but the Hello reply comes
  // first, so no signal goes to a peer in this set; its first message takes it out.
  std::set<const sd_bus*> quiet_peers;
  bool MaySignal(const sd_bus* bus) const { return !quiet_peers.contains(bus); }

  VolumeManager& volumes() const { return *services->volumes; }
  // The NBD URI of a volume's export, or "" without an NBD listener.
  std::string VolumeUri(const VolumeRecord& r) const {
    return nbd_uri_base.empty() ? std::string() : nbd_uri_base + "/" + r.name;
  }
  // Who is connected to the volume over NBD; empty when no NBD server runs.
  std::vector<ClientInfo> Clients(uint64_t volume_id) const {
    return services->clients ? services->clients->ListClients(volume_id)
                             : std::vector<ClientInfo>{};
  }
};

// Runs body (returning the handler's int) and turns an escaping exception (bad_alloc from a
// string, mostly) into a Failed error: exceptions must never unwind through sd-bus' C frames.
template <typename F>
int GuardHandler(sd_bus_error* ret_error, F&& body) noexcept {
  try {
    return body();
  } catch (const std::exception& e) {
    return SetBusError(ret_error, Internal(std::string("internal error: ") + e.what()));
  } catch (...) {
    return SetBusError(ret_error, Internal("internal error"));
  }
}

}  // namespace blocksnap
