// blocksnapctl's side of the snapshot methods (docs/DBUS.md, "Snapshots"). Snapshot and
// status dictionaries (a{sv}) become JSON objects with the daemon's keys (DESIGN.md §7), which
// both the tables and --json print from.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "ctl/bus_client.h"
#include "util/parse.h"
#include "util/status.h"

namespace blocksnap::ctl {

using SnapJson = nlohmann::ordered_json;

struct BadChunkInfo {
  uint64_t chunk = 0;
  std::string problem;
};
struct VerifyResult {
  bool ok = true;
  std::vector<BadChunkInfo> bad;
};

// Returns the new snapshot's id.
Result<std::string> CreateSnapshot(BusClient& c, const std::string& volume, const Tags& tags);
// volume "" = all.
Result<SnapJson> ListSnapshots(BusClient& c, const std::string& volume);
Result<SnapJson> GetSnapshot(BusClient& c, const std::string& id);
// Replies once the snapshot is no longer pending (no client-side timeout).
Result<SnapJson> WaitSnapshot(BusClient& c, const std::string& id);
Status DeleteSnapshot(BusClient& c, const std::string& id);
Result<SnapJson> TagSnapshot(BusClient& c, const std::string& id, const Tags& set,
                             const std::vector<std::string>& unset);
// LockSnapshot / UnlockSnapshot; the updated snapshot.
Result<SnapJson> SetSnapshotLocked(BusClient& c, const std::string& id, bool locked);
// The daemon writes the image to fd (a file, device, pipe or socket we opened for writing;
// it gets a copy). No client-side timeout.
Status DumpSnapshot(BusClient& c, const std::string& id, int fd);
Result<VerifyResult> VerifySnapshot(BusClient& c, const std::string& id);
// Changed byte ranges (offset, length), merged into runs.
Result<std::vector<std::pair<uint64_t, uint64_t>>> DiffSnapshots(BusClient& c,
                                                                 const std::string& from,
                                                                 const std::string& to);
Result<SnapJson> GetStatus(BusClient& c);

}  // namespace blocksnap::ctl
