// Policies for humans: the one-line summaries `blocksnapctl policy list|show` print and the
// daemon logs, so both describe a rule the same way.
#pragma once

#include <optional>
#include <string>

#include "policy/model.h"
#include "policy/time_types.h"

namespace blocksnap::policy {

// "every 24h at 03:00 (UTC)", "every 15m (UTC)", "cron '0 8-18 * * mon-fri' (Europe/Berlin)".
std::string DescribeCreate(const CreateRule& rule);

// A multi-line description of a policy: name, state, targets, and per schedule its create
// rule, retain rule, tags and, when `now` is given, its next run.
std::string DescribePolicy(const Policy& policy, std::optional<TimePoint> now = std::nullopt);

}  // namespace blocksnap::policy
