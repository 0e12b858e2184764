// The snapshot methods of org.blocksnap1.Manager (docs/DBUS.md, "Snapshots"): CreateSnapshot,
// ListSnapshots, GetSnapshot, WaitSnapshot, DeleteSnapshot, TagSnapshot, LockSnapshot,
// UnlockSnapshot, DumpSnapshot, VerifySnapshot, DiffSnapshots, GetStatus, and the signals
// SnapshotCreated, SnapshotCompleted, SnapshotRemoved. Long calls reply asynchronously
// (snapshot_async.h).
#pragma once

#include <systemd/sd-bus.h>

#include "bus/bus_context.h"

namespace blocksnap {

// Adds a vtable of org.blocksnap1.Manager at /org/blocksnap1 on one connection (a floating
// slot whose destruction drops the connection's share of the SnapshotAsync). ctx must
// outlive bus.
int AddSnapshotMethods(sd_bus* bus, BusContext* ctx);

}  // namespace blocksnap
