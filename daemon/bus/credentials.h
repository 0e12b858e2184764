// Who may change things through the control plane: root, the daemon's own user, or a member
// of the group "blocksnap". Reading (lists, properties) is open to every peer that can reach
// the socket or the bus.
#pragma once

#include <systemd/sd-bus.h>

#include "util/status.h"

namespace blocksnap {

inline constexpr const char* kControlGroup = "blocksnap";

// Checks the sender of `call`. On the private socket the credentials are the peer's
// SO_PEERCRED/SO_PEERGROUPS; on a bus they come from the bus daemon (augmented from /proc for
// the supplementary groups). PermissionDenied, naming `action`, when the sender may not
// mutate; an error when its credentials cannot be read (never allow on doubt).
Status CheckMayMutate(sd_bus_message* call, const char* action);

}  // namespace blocksnap
