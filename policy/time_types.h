// Time vocabulary of the policy library. All schedule math works on whole seconds since the
// Unix epoch (UTC, no leap seconds) and takes "now" as a parameter: nothing here reads a clock.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace blocksnap::policy {

// An instant (UTC).
using TimePoint = std::chrono::sys_seconds;
// A wall-clock reading in some time zone, not tied to an instant.
using LocalTime = std::chrono::local_seconds;

// 2024-03-31T01:00:00Z (RFC 3339, UTC, seconds precision).
std::string FormatTimestamp(TimePoint t);

// "2024-03-31T03:00:00" for a local reading (no offset).
std::string FormatLocal(LocalTime t);

// Parses "YYYY-MM-DDTHH:MM:SSZ" or "YYYY-MM-DDTHH:MM:SS+HH:MM" (RFC 3339 without fractions).
// Returns false on malformed input. Used by tests and the CLI's --start option.
bool ParseTimestamp(const std::string& text, TimePoint* out);

}  // namespace blocksnap::policy
