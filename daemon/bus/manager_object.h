// The Manager object (/org/blocksnap1, interface org.blocksnap1.Manager): volume lifecycle
// methods and the VolumeCreated/VolumeRemoved signals. See docs/DBUS.md.
#pragma once

#include <systemd/sd-bus.h>

#include "bus/bus_context.h"

namespace blocksnap {

// Registers the Manager vtable on one connection. The slot is floating (owned by the
// connection), so dropping the connection drops the registration. ctx must outlive bus.
int AddManagerObject(sd_bus* bus, BusContext* ctx);

}  // namespace blocksnap
