// The answer of an sd-bus node enumerator (sd_bus_add_node_enumerator), shared by the volume
// and snapshot object trees.
#pragma once

#include <string>
#include <vector>

namespace blocksnap {

// Stores paths in *nodes as a NULL-terminated strv, malloc'd with its strings because sd-bus
// frees them. Returns 0, or -ENOMEM with nothing allocated.
int NodeList(const std::vector<std::string>& paths, char*** nodes);

}  // namespace blocksnap
