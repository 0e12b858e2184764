// [restore] org.blocksnap1.Manager.CreateVolumeFromSnapshot (docs/DBUS.md): a volume
// restored from a snapshot, served at once, hydrating in the background.
#pragma once

#include <systemd/sd-bus.h>

#include "bus/bus_context.h"

namespace blocksnap {

// Adds one more vtable of org.blocksnap1.Manager at /org/blocksnap1 on bus (floating slot;
// its own userdata, as sd-bus wants one per vtable of an interface). ctx outlives bus.
int AddRestoreMethods(sd_bus* bus, BusContext* ctx);

}  // namespace blocksnap
