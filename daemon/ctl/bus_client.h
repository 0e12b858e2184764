// BusClient: blocksnapctl's side of the control-plane API (docs/DBUS.md), over the daemon's
// private peer-to-peer socket. Every call returns a Status/Result whose message is the
// daemon's own text for errors it reported, or a connection-level reason.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bus/bus_ptr.h"
#include "util/parse.h"
#include "util/status.h"

namespace blocksnap::ctl {

struct ClientEntry {
  std::string address;
  std::string export_name;
  std::string connected;  // RFC 3339
};

// A volume as Manager.GetVolume / ListVolumes describe it (the a{sv} dictionary).
struct VolumeInfo {
  std::string id;
  std::string name;
  std::string path;  // D-Bus object path
  uint64_t size = 0;
  uint64_t chunk_size = 0;
  Tags tags;
  std::string state;
  std::string created;  // RFC 3339
  std::string uri;      // "" when the daemon serves no NBD TCP listener
  std::vector<ClientEntry> clients;
  // [restore]
  std::string origin_snapshot;  // "" = not restored from a snapshot
  uint64_t hydrated_bytes = 0;
  uint64_t hydrate_total_bytes = 0;
};

struct CreateVolumeArgs {
  std::string name;
  uint64_t size = 0;
  uint64_t chunk_size = 0;  // 0 = the daemon's default
  Tags tags;
};

// For calls that may outlast sd-bus' default 25 s (snapshot Wait, Dump, Verify, Diff, a
// policy run or reload that waits for a round of snapshots, and the synchronous ones whose
// work grows with the data: restore, snapshot delete, volume delete): lifts the connection's
// default timeout. Called from a CallManager append function, before the call is sent. A
// client stopped with Ctrl-C just exits (no handler); the daemon finishes the call and its
// reply goes nowhere.
int NoCallTimeout(sd_bus_message* call);

class BusClient {
 public:
  // Connects to the daemon's control socket at path. The failure message reads
  // "cannot connect to blocksnapd at PATH: <strerror>".
  static Result<std::unique_ptr<BusClient>> Connect(const std::string& path);

  // Returns the new volume's id.
  Result<std::string> CreateVolume(const CreateVolumeArgs& args);
  Result<std::vector<VolumeInfo>> ListVolumes();
  Result<VolumeInfo> GetVolume(const std::string& name_or_id);
  Status DeleteVolume(const std::string& name_or_id, bool force);
  Status TagVolume(const std::string& name_or_id, const Tags& set,
                   const std::vector<std::string>& unset);

  // Wraps an already started connection (Connect makes one).
  BusClient(BusPtr bus, std::string path) : bus_(std::move(bus)), path_(std::move(path)) {}

  // The building block for further command groups (snapshots, policies): calls `method` of
  // org.blocksnap1.Manager with the arguments append(m) adds (it returns sd-bus' result);
  // on success *reply holds the answer. A daemon error comes back as its Status.
  template <typename F>
  Status CallManager(const char* method, F&& append, MessagePtr* reply) {
    sd_bus_message* call = nullptr;
    int r = NewManagerCall(method, &call);
    MessagePtr owned(call);
    if (r >= 0) r = append(call);
    if (r < 0) return MessageError(r);
    return Call(call, reply);
  }
  // The Status for a reply that could not be read (negative errno r).
  Status MessageError(int r) const;

 private:
  int NewManagerCall(const char* method, sd_bus_message** call);
  Status Call(sd_bus_message* call, MessagePtr* reply);

  BusPtr bus_;
  std::string path_;
};

}  // namespace blocksnap::ctl
