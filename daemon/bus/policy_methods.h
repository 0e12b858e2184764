// The scheduler's D-Bus methods (docs/DBUS.md, "Policies"): ListPolicies, GetPolicy,
// PlanPolicies, RunPolicy and ReloadPolicies on org.blocksnap1.Manager, and, only when
// blocksnapd runs with --test-clock, org.blocksnap1.Testing.SetTime.
#pragma once

#include <systemd/sd-bus.h>

#include "bus/bus_context.h"

namespace blocksnap {

// Adds a second vtable of org.blocksnap1.Manager (and the Testing one) at /org/blocksnap1
// on one connection; floating slots, like AddManagerObject. ctx must outlive bus.
int AddPolicyMethods(sd_bus* bus, BusContext* ctx);

}  // namespace blocksnap
