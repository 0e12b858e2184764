// POSIX TZ rules ("CET-1CEST,M3.5.0,M10.5.0/3"), as found in the footer of TZif v2+ files.
// They give a zone's offsets for instants after the last transition in the file's table.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "policy/result.h"

namespace blocksnap::policy {

// One local time type: seconds east of UTC, whether it is daylight time, its abbreviation.
struct ZoneType {
  int32_t utc_offset = 0;
  bool is_dst = false;
  std::string abbr;
};

// The date and local time of a DST change in a year.
struct PosixDate {
  enum class Kind { kJulian1, kJulian0, kMonthWeekDay };
  Kind kind = Kind::kMonthWeekDay;
  int day = 0;          // kJulian1: 1..365 (Feb 29 never counted); kJulian0: 0..365
  int month = 0;        // kMonthWeekDay: 1..12
  int week = 0;         // 1..5, 5 = the last such weekday of the month
  int weekday = 0;      // 0 = Sunday
  int32_t time = 7200;  // seconds after local midnight, -167h..167h (RFC 8536 extension)
};

struct PosixTz {
  ZoneType std_type;
  std::optional<ZoneType> dst_type;  // no DST when empty
  PosixDate start;                   // DST begins (in standard time)
  PosixDate end;                     // DST ends (in daylight time)
};

// Parses a TZ string. An empty string is an error (the caller decides what "no rule" means).
Expected<PosixTz> ParsePosixTz(std::string_view text);

// The UTC instants (seconds since the epoch) at which DST starts and ends in `year`, counted
// in local years. Only meaningful when dst_type is set.
std::pair<int64_t, int64_t> PosixTransitions(const PosixTz& tz, int year);

// The local time type in effect at `t` (seconds since the epoch, UTC).
const ZoneType& PosixTypeAt(const PosixTz& tz, int64_t t);

}  // namespace blocksnap::policy
