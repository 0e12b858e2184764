// Tags in policies: validation (the same rules as the daemon's, implemented here so policy/
// stays independent of daemon/), the reserved tags the scheduler sets, and `{placeholder}`
// substitution in tag values.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "policy/result.h"
#include "policy/time_types.h"

namespace blocksnap::policy {

using Tags = std::map<std::string, std::string>;

inline constexpr std::string_view kReservedTagPrefix = "blocksnap:";
// Set by the scheduler on every snapshot it creates: the policy's name.
inline constexpr std::string_view kPolicyTag = "blocksnap:policy";
// The schedule(s) that made the snapshot, comma-separated in policy order ("hourly,daily").
inline constexpr std::string_view kScheduleTag = "blocksnap:schedule";
// The slot the snapshot was made for, RFC 3339 UTC ("2024-03-31T03:00:00Z"). Retention
// places the snapshot in tiers and measures its age by it, not by its creation time, which
// is later when a round was slow or caught up.
inline constexpr std::string_view kSlotTag = "blocksnap:slot";

inline constexpr size_t kMaxTagKey = 128;
inline constexpr size_t kMaxTagValue = 256;
// Policy, schedule and volume names: 1..64 of [A-Za-z0-9._-].
inline constexpr size_t kMaxName = 64;

// Keys: 1..128 of [A-Za-z0-9._:/-]; keys starting with "blocksnap:" are reserved.
Expected<bool> ValidateTagKey(std::string_view key);
// Values: at most 256 printable ASCII characters (space included).
Expected<bool> ValidateTagValue(std::string_view value);
// Policy and schedule names: 1..64 of [A-Za-z0-9._-], not "." or "..".
Expected<bool> ValidateName(std::string_view what, std::string_view name);

// What `{placeholder}`s expand to for one snapshot.
struct TagContext {
  std::string policy;
  std::string schedule;   // the schedule names of a merged snapshot, comma-separated
  std::string volume;     // the volume's name
  TimePoint timestamp{};  // the slot, written as RFC 3339 UTC
};

// Checks a template value: a valid tag value in which only {policy}, {schedule}, {volume}
// and {timestamp} may appear and braces pair.
Expected<bool> ValidateTagTemplate(std::string_view value);

// Expands the placeholders of a value that passed ValidateTagTemplate; the result is cut
// to 256 characters if the names made it longer.
std::string ExpandTagTemplate(std::string_view value, const TagContext& context);

// Splits "a,b,c" into {"a","b","c"} (empty input -> empty list).
std::vector<std::string> SplitList(std::string_view text);

}  // namespace blocksnap::policy
