// Time zones without I/O. A TimeZone is built from TZif bytes (RFC 8536, v1..v3) that the
// caller obtained through a TimeZoneSource; all schedule math then works on the TimeZone.
// The only source that touches files is ZoneinfoFiles (zoneinfo_files.h).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/posix_tz.h"
#include "policy/result.h"
#include "policy/time_types.h"

namespace blocksnap::policy {

// How a local reading maps to instants.
struct LocalResolution {
  enum class Kind {
    kUnique,     // exactly one instant: `first`
    kGap,        // the reading was skipped (spring forward); `first` = the end of the gap
    kAmbiguous,  // the reading occurs twice (fall back): `first` and `second`
  };
  Kind kind = Kind::kUnique;
  TimePoint first{};
  TimePoint second{};
};

class TimeZone {
  struct Key {};  // only the factories below can construct a TimeZone

 public:
  explicit TimeZone(Key) {}

  // UTC, built in (needs no data).
  static std::shared_ptr<const TimeZone> Utc();

  // Parses a TZif file's bytes. `name` is kept for messages. Fails on truncated or
  // inconsistent data and on leap-second ("right/") files.
  static Expected<std::shared_ptr<const TimeZone>> FromTzif(std::string name,
                                                            std::string_view bytes);

  // A zone given only by a POSIX TZ rule ("EST5EDT,M3.2.0,M11.1.0"); handy in tests.
  static Expected<std::shared_ptr<const TimeZone>> FromPosix(std::string name,
                                                             std::string_view rule);

  const std::string& name() const { return name_; }

  // The local time type (offset, DST flag, abbreviation) in effect at `t`.
  const ZoneType& TypeAt(TimePoint t) const;

  // The wall-clock reading at `t`.
  LocalTime ToLocal(TimePoint t) const;

  // All instants whose wall-clock reading is `local`.
  LocalResolution Resolve(LocalTime local) const;

  // The instant a schedule uses for `local`: a skipped reading maps to the first instant
  // after the gap (the transition itself), a repeated one to its first occurrence.
  TimePoint FromLocal(LocalTime local) const;

  // The largest step back of the wall clock (fall back) in (from, to], 0 if none.
  std::chrono::seconds LargestFallBack(TimePoint from, TimePoint to) const;

 private:
  struct Transition {
    int64_t at;   // UTC seconds
    size_t type;  // index into types_
  };
  // An offset change: from `at` on, `offset` applies.
  struct Change {
    int64_t at;
    int32_t offset;
  };

  int32_t OffsetAt(int64_t t) const {
    return TypeAt(TimePoint(std::chrono::seconds(t))).utc_offset;
  }
  // Offset changes in (a, b], table and rule together, in order.
  std::vector<Change> ChangesIn(int64_t a, int64_t b) const;

  friend class TzifParser;

  std::string name_;
  std::vector<Transition> transitions_;
  std::vector<ZoneType> types_;
  std::optional<PosixTz> rule_;
};

// Checks an IANA zone name before anyone looks it up: 1..255 characters of
// [A-Za-z0-9._+-/], relative (no leading '/'), no empty, "." or ".." components.
Expected<bool> ValidateZoneName(std::string_view name);

// Where zone data comes from: a name -> the TZif bytes, or an error. Injected by the caller.
class TimeZoneSource {
 public:
  virtual ~TimeZoneSource() = default;
  // The TZif bytes of zone `name` (already validated), or an error such as
  // "unknown time zone 'Mars/Base'".
  virtual Expected<std::string> Read(std::string_view name) const = 0;
};

// Validates the name and builds the zone: "UTC" is built in, anything else is read from
// `source` and parsed. Errors are ready for a "file:line:col: " prefix.
Expected<std::shared_ptr<const TimeZone>> LoadTimeZone(const TimeZoneSource& source,
                                                       std::string_view name);

// A source with no zones at all: only "UTC" (built in) resolves.
class NoTimeZones : public TimeZoneSource {
 public:
  Expected<std::string> Read(std::string_view name) const override;
};

}  // namespace blocksnap::policy
