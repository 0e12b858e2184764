// org.blocksnap1.Testing at /org/blocksnap1: served only when blocksnapd runs with
// --test-clock (TESTS ONLY, docs/DBUS.md). SetTime moves the scheduler's clock and replies
// when the tick due then is done; CreateSnapshot and ListSnapshots give tests "manual"
// snapshots and a view of all snapshots with their tags.
#pragma once

#include <systemd/sd-bus.h>

#include "services.h"

namespace blocksnap {

inline constexpr const char* kTestingInterface = "org.blocksnap1.Testing";

// Registers the Testing vtable (floating slot); services must outlive bus.
int AddTestingObject(sd_bus* bus, Services* services);

}  // namespace blocksnap
