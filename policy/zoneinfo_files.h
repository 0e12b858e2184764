// The ONLY I/O in policy/: a TimeZoneSource that reads TZif files from a zoneinfo directory
// (/usr/share/zoneinfo by default). The daemon and blocksnapctl construct one and pass it in;
// everything else in policy/ only sees the TimeZoneSource interface.
#pragma once

#include <string>

#include "policy/time_zone.h"

namespace blocksnap::policy {

class ZoneinfoFiles : public TimeZoneSource {
 public:
  explicit ZoneinfoFiles(std::string root = "/usr/share/zoneinfo") : root_(std::move(root)) {}

  // Reads <root>/<name> after ValidateZoneName. Fails with "unknown time zone 'X'" when the
  // file is missing, unreadable, not a regular file, or larger than 1 MiB.
  Expected<std::string> Read(std::string_view name) const override;

 private:
  std::string root_;
};

}  // namespace blocksnap::policy
