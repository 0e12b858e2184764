// Durations as policies write them: "30m", "12h", "5d", "2w".
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "policy/result.h"

namespace blocksnap::policy {

// A positive integer followed by one unit: m (minutes), h (hours), d (days), w (weeks).
// Rejects empty input, zero, signs, fractions, other units and values above 1000 weeks.
Expected<std::chrono::minutes> ParseDuration(std::string_view text);

// Minutes for humans, in the largest unit that is not zero, floored: 150 -> "2h",
// 6 days 3 hours -> "6d", 59 -> "59m". Weeks are not used ("14d", not "2w").
std::string FormatAge(std::chrono::seconds age);

// The canonical spelling of a duration: the largest unit that divides it exactly
// (10080 -> "1w", 1440 -> "1d", 90 -> "90m").
std::string FormatDuration(std::chrono::minutes d);

}  // namespace blocksnap::policy
