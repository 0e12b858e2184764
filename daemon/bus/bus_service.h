// BusService: blocksnapd's D-Bus control plane (docs/DBUS.md).
//
// Serves the Manager object and the per-volume objects on every connection it holds: each
// accepted connection of the private control socket, plus, when reachable, one connection to
// the system or user bus that owns the name org.blocksnap1. Everything runs on the sd-event
// loop handed to Start (the daemon's main thread); handlers call the thread-safe
// VolumeManager directly.
#pragma once

#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <systemd/sd-id128.h>

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "bus/bus_context.h"
#include "bus/bus_ptr.h"
#include "services.h"
#include "util/status.h"
#include "util/unique_fd.h"

namespace blocksnap {

struct BusOptions {
  // The private socket; always served.
  std::string control_path;
  // "auto": the system bus as root, else the user bus, and no bus is fine (logged at info);
  // "system" / "user": that bus, and failing to reach it or to own the name is an error;
  // "none": the private socket only.
  std::string bus = "auto";
  // Base of the volumes' Uri property, e.g. "nbd://127.0.0.1:10809"; empty if none.
  std::string nbd_uri_base;
};

class BusService : public BusEvents {
  struct PrivateTag {};  // keeps the constructor for Start() alone, without a raw `new`

 public:
  // Listens on options.control_path, attaches to event and, per options.bus, connects to a
  // bus and requests org.blocksnap1. services (and its VolumeManager) must outlive the
  // returned service, which must be destroyed before event.
  static Result<std::unique_ptr<BusService>> Start(sd_event* event, const BusOptions& options,
                                                   Services& services);
  // Closes every connection and unlinks control_path.
  ~BusService() override;

  BusService(const BusService&) = delete;
  BusService& operator=(const BusService&) = delete;

  // Number of connected private-socket peers (for tests and status output).
  size_t peer_count() const { return peers_.size(); }
  // Whether the service holds its name on a bus.
  bool on_bus() const { return bus_ != nullptr; }

  // BusEvents: emitted on the bus and on every peer connection.
  void VolumeCreated(const VolumeRecord& record) override;
  void VolumeRemoved(const VolumeRecord& record) override;
  void VolumeChanged(const VolumeRecord& record, const char* property) override;

  BusService(PrivateTag, sd_event* event, const BusOptions& options, Services& services);

 private:
  Status ListenPrivate();
  Status ConnectBus();
  // Puts the Manager and Volume objects and the disconnect watch on one connection.
  int Serve(sd_bus* bus);
  void AcceptPeer();
  void EmitVolumeSignal(const char* member, const VolumeRecord& record);
  // Runs emit on the bus connection and on every peer; failures are logged at debug.
  void ForEachConnection(const char* what, const std::function<int(sd_bus*)>& emit);

  static int OnAcceptReady(sd_event_source* source, int fd, uint32_t revents,
                           void* userdata) noexcept;
  static int OnPostIteration(sd_event_source* source, void* userdata) noexcept;
  static int OnPeerHello(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept;
  static int OnDisconnected(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept;

  sd_event* event_;
  BusOptions options_;
  BusContext context_;
  sd_id128_t server_id_{};
  UniqueFd listen_fd_;
  // The inode bound at control_path: the destructor unlinks the path only while it is still
  // this socket, never a successor daemon's.
  bool socket_bound_ = false;
  dev_t socket_dev_ = 0;
  ino_t socket_ino_ = 0;
  EventSourcePtr accept_source_;
  EventSourcePtr post_source_;  // see OnPostIteration
  BusPtr bus_;                  // system or user bus; null when not on one
  std::map<sd_bus*, BusPtr> peers_;
  uint64_t hello_count_ = 0;  // for the unique names handed out by OnPeerHello  // private-socket
                              // connections, by their handle
};

}  // namespace blocksnap
