// Marshalling of the small composite values every part of the API uses (tags, string lists),
// shared by the daemon's handlers and blocksnapctl so both read and write them one way.
#pragma once

#include <systemd/sd-bus.h>

#include <string>
#include <vector>

#include "util/parse.h"

namespace blocksnap {

inline constexpr const char* kTagsSignature = "a{ss}";

// Each returns sd-bus' result: negative errno on failure.
int AppendTags(sd_bus_message* m, const Tags& tags);
int AppendStrings(sd_bus_message* m, const std::vector<std::string>& strings);
// Reads an a{ss} into *tags (replacing its contents).
int ReadTags(sd_bus_message* m, Tags* tags);
// Reads an "as" into *out (replacing its contents).
int ReadStrings(sd_bus_message* m, std::vector<std::string>* out);

}  // namespace blocksnap
