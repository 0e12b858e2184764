// Marshalling of the small composite values every part of the API uses (tags, string lists),
// shared by the daemon's handlers and blocksnapctl so both read and write them one way.
#pragma once

#include <systemd/sd-bus.h>

#include <string>
#include <string_view>
#include <vector>

#include "util/parse.h"
#include "util/utf8.h"

namespace blocksnap {

inline constexpr const char* kTagsSignature = "a{ss}";

// Each returns sd-bus' result: negative errno on failure. Strings are appended as
// ValidUtf8 (util/utf8.h): text from files or file names must not make a reply unbuildable.
// Appends one 's'.
int AppendText(sd_bus_message* m, std::string_view s);
int AppendTags(sd_bus_message* m, const Tags& tags);
int AppendStrings(sd_bus_message* m, const std::vector<std::string>& strings);
// Reads an a{ss} into *tags (replacing its contents).
int ReadTags(sd_bus_message* m, Tags* tags);
// Reads an "as" into *out (replacing its contents).
int ReadStrings(sd_bus_message* m, std::vector<std::string>* out);

}  // namespace blocksnap
