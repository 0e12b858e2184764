// Helpers for the policy unit tests: instants from RFC 3339 text and real zone data read
// from /usr/share/zoneinfo through the library's one file-reading TimeZoneSource.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "policy/time_types.h"
#include "policy/time_zone.h"
#include "policy/zoneinfo_files.h"

namespace blocksnap::policy::testing {

inline TimePoint T(const std::string& text) {
  TimePoint t{};
  EXPECT_TRUE(ParseTimestamp(text, &t)) << text;
  return t;
}

inline std::string S(TimePoint t) {
  return FormatTimestamp(t);
}

inline const TimeZoneSource& Zones() {
  static const ZoneinfoFiles kFiles;
  return kFiles;
}

inline std::shared_ptr<const TimeZone> Zone(const std::string& name) {
  auto tz = LoadTimeZone(Zones(), name);
  EXPECT_TRUE(tz.ok()) << (tz.ok() ? "" : tz.error().message);
  return tz.ok() ? tz.value() : TimeZone::Utc();
}

}  // namespace blocksnap::policy::testing
