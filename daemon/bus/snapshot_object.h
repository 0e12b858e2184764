// Per-snapshot objects /org/blocksnap1/snapshot/<id> (interface org.blocksnap1.Snapshot,
// docs/DBUS.md): read-only properties read afresh from the SnapshotManager, Progress live
// while pending. No PropertiesChanged: follow SnapshotCompleted, or poll Progress.
#pragma once

#include <systemd/sd-bus.h>

#include <optional>
#include <string>
#include <string_view>

#include "bus/bus_context.h"

namespace blocksnap {

inline constexpr const char* kSnapshotInterface = "org.blocksnap1.Snapshot";
inline constexpr const char* kSnapshotPathPrefix = "/org/blocksnap1/snapshot";

// "snap-00000000000000a1" -> "/org/blocksnap1/snapshot/snap_00000000000000a1".
std::string SnapshotObjectPath(std::string_view snapshot_id);
std::optional<std::string> SnapshotIdFromObjectPath(std::string_view path);

// A fallback vtable below kSnapshotPathPrefix and its node enumerator, on one connection
// (floating slots). ctx must outlive bus.
int AddSnapshotObjects(sd_bus* bus, BusContext* ctx);

}  // namespace blocksnap
