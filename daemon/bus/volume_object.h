// One object per volume, /org/blocksnap1/volume/<id>, interface org.blocksnap1.Volume.
//
// Served by a fallback vtable plus a node enumerator rather than one registration per
// volume: the objects then follow the VolumeManager by construction (no registration to
// add or forget when a volume comes or goes, on any connection), and a lookup costs one
// map search in the manager.
#pragma once

#include <systemd/sd-bus.h>

#include "bus/bus_context.h"

namespace blocksnap {

// Registers the Volume fallback vtable and the enumerator under kVolumePathPrefix on one
// connection (floating slots, owned by the connection). ctx must outlive bus.
int AddVolumeObjects(sd_bus* bus, BusContext* ctx);

}  // namespace blocksnap
