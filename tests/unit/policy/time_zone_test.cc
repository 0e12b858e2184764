// TZif and POSIX TZ parsing, offsets, and how local readings resolve around DST changes.
#include <gtest/gtest.h>

#include "policy/posix_tz.h"
#include "policy/time_zone.h"
#include "tests/unit/policy/test_util.h"

namespace blocksnap::policy {
namespace {

using namespace std::chrono;
using testing::S;
using testing::T;
using testing::Zone;

LocalTime L(const std::string& text) {
  return LocalTime(T(text + "Z").time_since_epoch());
}

TEST(TimeZone, BerlinOffsetsFromTzif) {
  auto berlin = Zone("Europe/Berlin");
  EXPECT_EQ(berlin->name(), "Europe/Berlin");
  EXPECT_EQ(berlin->TypeAt(T("2024-01-15T12:00:00Z")).utc_offset, 3600);
  EXPECT_EQ(berlin->TypeAt(T("2024-01-15T12:00:00Z")).abbr, "CET");
  EXPECT_EQ(berlin->TypeAt(T("2024-07-15T12:00:00Z")).utc_offset, 7200);
  EXPECT_TRUE(berlin->TypeAt(T("2024-07-15T12:00:00Z")).is_dst);
  // The change itself: 01:00 UTC on the last Sunday of March.
  EXPECT_EQ(berlin->TypeAt(T("2024-03-31T00:59:59Z")).utc_offset, 3600);
  EXPECT_EQ(berlin->TypeAt(T("2024-03-31T01:00:00Z")).utc_offset, 7200);
}

TEST(TimeZone, FarFutureUsesPosixFooter) {
  // Beyond the table (2037 in slim files) the footer rule "CET-1CEST,M3.5.0,M10.5.0/3" applies.
  auto berlin = Zone("Europe/Berlin");
  EXPECT_EQ(berlin->TypeAt(T("2090-03-26T00:59:59Z")).utc_offset, 3600);
  EXPECT_EQ(berlin->TypeAt(T("2090-03-26T01:00:00Z")).utc_offset, 7200);
  EXPECT_EQ(berlin->TypeAt(T("2090-10-29T00:59:59Z")).utc_offset, 7200);
  EXPECT_EQ(berlin->TypeAt(T("2090-10-29T01:00:00Z")).utc_offset, 3600);
  auto ny = Zone("America/New_York");
  EXPECT_EQ(ny->TypeAt(T("2090-07-01T00:00:00Z")).utc_offset, -4 * 3600);
  EXPECT_EQ(ny->TypeAt(T("2090-12-01T00:00:00Z")).utc_offset, -5 * 3600);
}

TEST(TimeZone, ResolveBerlinGapAndRepeat) {
  auto berlin = Zone("Europe/Berlin");
  LocalResolution gap = berlin->Resolve(L("2024-03-31T02:30:00"));
  EXPECT_EQ(gap.kind, LocalResolution::Kind::kGap);
  EXPECT_EQ(S(gap.first), "2024-03-31T01:00:00Z");  // 03:00 CEST, the end of the gap
  LocalResolution twice = berlin->Resolve(L("2024-10-27T02:30:00"));
  EXPECT_EQ(twice.kind, LocalResolution::Kind::kAmbiguous);
  EXPECT_EQ(S(twice.first), "2024-10-27T00:30:00Z");   // 02:30 CEST
  EXPECT_EQ(S(twice.second), "2024-10-27T01:30:00Z");  // 02:30 CET
  EXPECT_EQ(S(berlin->FromLocal(L("2024-10-27T02:30:00"))), "2024-10-27T00:30:00Z");
  LocalResolution plain = berlin->Resolve(L("2024-06-01T12:00:00"));
  EXPECT_EQ(plain.kind, LocalResolution::Kind::kUnique);
  EXPECT_EQ(S(plain.first), "2024-06-01T10:00:00Z");
}

TEST(TimeZone, ResolveNewYorkGapAndRepeat) {
  auto ny = Zone("America/New_York");
  EXPECT_EQ(S(ny->FromLocal(L("2024-03-10T02:30:00"))), "2024-03-10T07:00:00Z");
  EXPECT_EQ(ny->Resolve(L("2024-03-10T02:00:00")).kind, LocalResolution::Kind::kGap);
  EXPECT_EQ(ny->Resolve(L("2024-03-10T03:00:00")).kind, LocalResolution::Kind::kUnique);
  LocalResolution twice = ny->Resolve(L("2024-11-03T01:30:00"));
  EXPECT_EQ(twice.kind, LocalResolution::Kind::kAmbiguous);
  EXPECT_EQ(S(twice.first), "2024-11-03T05:30:00Z");   // EDT
  EXPECT_EQ(S(twice.second), "2024-11-03T06:30:00Z");  // EST
  EXPECT_EQ(ny->Resolve(L("2024-11-03T02:00:00")).kind, LocalResolution::Kind::kUnique);
}

TEST(TimeZone, ToLocalRoundTrips) {
  auto ny = Zone("America/New_York");
  EXPECT_EQ(FormatLocal(ny->ToLocal(T("2024-11-03T06:30:00Z"))), "2024-11-03T01:30:00");
  EXPECT_EQ(FormatLocal(ny->ToLocal(T("2024-11-03T05:30:00Z"))), "2024-11-03T01:30:00");
}

TEST(TimeZone, SouthernHemispherePosixRuleMatchesTzif) {
  auto sydney = Zone("Australia/Sydney");
  auto rule = TimeZone::FromPosix("Sydney", "AEST-10AEDT,M10.1.0,M4.1.0/3");
  ASSERT_TRUE(rule.ok());
  for (const char* t : {"2024-01-10T00:00:00Z", "2024-04-06T15:59:59Z", "2024-04-06T16:00:00Z",
                        "2024-07-01T00:00:00Z", "2024-10-05T15:59:59Z", "2024-10-05T16:00:00Z",
                        "2095-01-01T00:00:00Z", "2095-07-01T00:00:00Z"}) {
    EXPECT_EQ((*rule)->TypeAt(T(t)).utc_offset, sydney->TypeAt(T(t)).utc_offset) << t;
  }
}

TEST(PosixTz, ParsesForms) {
  auto india = ParsePosixTz("IST-5:30");
  ASSERT_TRUE(india.ok());
  EXPECT_EQ(india->std_type.utc_offset, 5 * 3600 + 1800);
  EXPECT_FALSE(india->dst_type.has_value());
  auto quoted = ParsePosixTz("<-03>3");
  ASSERT_TRUE(quoted.ok());
  EXPECT_EQ(quoted->std_type.abbr, "-03");
  EXPECT_EQ(quoted->std_type.utc_offset, -3 * 3600);
  auto julian = ParsePosixTz("<+00>0<+02>-2,0/0,J365/25");  // v3: DST all year
  ASSERT_TRUE(julian.ok());
  EXPECT_EQ(julian->end.time, 25 * 3600);
  EXPECT_EQ(ParsePosixTz("CET-1CEST,M13.5.0,M10.5.0/3").error().message,
            "bad POSIX TZ rule 'CET-1CEST,M13.5.0,M10.5.0/3'");
  EXPECT_FALSE(ParsePosixTz("").ok());
}

TEST(TimeZone, RejectsBadTzifBytes) {
  EXPECT_EQ(
      TimeZone::FromTzif("x", "not a tzif file at all, no no no no no no no no").error().message,
      "bad TZif header");
  std::string berlin = testing::Zones().Read("Europe/Berlin").value();
  EXPECT_FALSE(TimeZone::FromTzif("x", berlin.substr(0, 100)).ok());
  EXPECT_FALSE(TimeZone::FromTzif("x", berlin.substr(0, berlin.size() - 1)).ok());
  EXPECT_TRUE(TimeZone::FromTzif("x", berlin).ok());
}

TEST(TimeZone, ValidatesNames) {
  EXPECT_TRUE(ValidateZoneName("Europe/Berlin").ok());
  EXPECT_TRUE(ValidateZoneName("America/Argentina/Buenos_Aires").ok());
  EXPECT_TRUE(ValidateZoneName("Etc/GMT+5").ok());
  EXPECT_EQ(ValidateZoneName("../../etc/passwd").error().message,
            "invalid time zone name '../../etc/passwd': must not contain empty, '.' or '..' "
            "components");
  EXPECT_EQ(ValidateZoneName("/etc/localtime").error().message,
            "invalid time zone name '/etc/localtime': must not be an absolute path");
  EXPECT_FALSE(ValidateZoneName("Europe//Berlin").ok());
  EXPECT_FALSE(ValidateZoneName("Europe/Berlin/").ok());
  EXPECT_FALSE(ValidateZoneName("Europe/Ber lin").ok());
  EXPECT_FALSE(ValidateZoneName("").ok());
}

TEST(TimeZone, LoadThroughSources) {
  EXPECT_EQ(LoadTimeZone(NoTimeZones(), "UTC").value(), TimeZone::Utc());
  EXPECT_EQ(LoadTimeZone(NoTimeZones(), "Europe/Berlin").error().message,
            "unknown time zone 'Europe/Berlin'");
  EXPECT_EQ(LoadTimeZone(testing::Zones(), "Mars/Olympus_Mons").error().message,
            "unknown time zone 'Mars/Olympus_Mons'");
  EXPECT_EQ(LoadTimeZone(testing::Zones(), "Europe").error().message,
            "unknown time zone 'Europe'");  // a directory, not a zone
  EXPECT_TRUE(LoadTimeZone(testing::Zones(), "Asia/Kolkata").ok());
}

// A hand-made version 1 file (32-bit times, no footer): AAA (+1h) until 2000-01-01,
// BBB (+2h, DST) until 2001-01-01, then AAA again.
std::string TzifV1() {
  std::string b = "TZif";
  b += std::string(16, '\0');  // version 1 + reserved
  auto be32 = [&](uint32_t v) {
    for (int i = 3; i >= 0; --i) b += char((v >> (8 * i)) & 0xff);
  };
  for (uint32_t count : {0u, 0u, 0u, 2u, 2u, 8u}) be32(count);  // ut, std, leap, time, type, char
  be32(946684800);                                              // 2000-01-01
  be32(978307200);                                              // 2001-01-01
  b += char(1);
  b += char(0);
  be32(3600);
  b += char(0);
  b += char(0);
  be32(7200);
  b += char(1);
  b += char(4);
  b += std::string("AAA\0BBB\0", 8);
  return b;
}

TEST(TimeZone, ParsesVersion1Files) {
  auto tz = TimeZone::FromTzif("v1", TzifV1());
  ASSERT_TRUE(tz.ok()) << tz.error().message;
  EXPECT_EQ((*tz)->TypeAt(T("1999-06-01T00:00:00Z")).abbr, "AAA");  // before: type 0
  EXPECT_EQ((*tz)->TypeAt(T("2000-06-01T00:00:00Z")).abbr, "BBB");
  EXPECT_EQ((*tz)->TypeAt(T("2000-06-01T00:00:00Z")).utc_offset, 7200);
  EXPECT_EQ((*tz)->TypeAt(T("2030-06-01T00:00:00Z")).abbr, "AAA");  // last type, no footer
  // The change back at 2001-01-01T00:00Z repeats 01:00..02:00 local.
  EXPECT_EQ((*tz)->Resolve(L("2001-01-01T01:30:00")).kind, LocalResolution::Kind::kAmbiguous);
  std::string bad = TzifV1();
  bad[44 + 8] = 5;  // first transition refers to type 5
  EXPECT_EQ(TimeZone::FromTzif("v1", bad).error().message,
            "transition refers to a missing local time type");
}

}  // namespace
}  // namespace blocksnap::policy
