// RFC 3339 timestamps (UTC, second precision) for records and JSON output.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace blocksnap {

using SystemTime = std::chrono::system_clock::time_point;

// 2026-11-23T03:00:00Z
std::string FormatRfc3339(SystemTime t);
// Parses what FormatRfc3339 writes (and a trailing fraction or +00:00); nullopt when invalid.
std::optional<SystemTime> ParseRfc3339(std::string_view text);

}  // namespace blocksnap
