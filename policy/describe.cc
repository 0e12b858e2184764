#include "policy/describe.h"

#include <cstdio>

#include "policy/duration.h"
#include "policy/retention.h"
#include "policy/schedule.h"

namespace blocksnap::policy {

namespace {

std::string TimeOfDay(int minutes) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%02d:%02d", (minutes / 60) % 24, minutes % 60);
  return buf;
}

std::string DescribeTags(const Tags& tags) {
  std::string out;
  for (const auto& [k, v] : tags) out += (out.empty() ? "" : ", ") + k + "=" + v;
  return out;
}

}  // namespace

std::string DescribeCreate(const CreateRule& rule) {
  std::string out;
  if (rule.kind == CreateRule::Kind::kCron) {
    out = "cron '" + rule.cron.text + "'";
  } else {
    out = "every " + FormatDuration(rule.every);
    for (size_t i = 0; i < rule.times.size(); ++i) {
      out += (i == 0 ? " at " : ", ") + TimeOfDay(rule.times[i]);
    }
  }
  return out + " (" + rule.timezone + ")";
}

std::string DescribePolicy(const Policy& policy, std::optional<TimePoint> now) {
  std::string out = "policy " + policy.name + (policy.enabled ? "" : " (disabled)") + "\n";
  if (!policy.description.empty()) out += "  description: " + policy.description + "\n";
  out += std::string("  targets: volumes with ") +
         (policy.match == Match::kAll ? "all of " : "any of ") + DescribeTags(policy.target_tags) +
         "\n";
  for (const Schedule& s : policy.schedules) {
    out += "  schedule " + s.name + ": " + DescribeCreate(s.create) + "; keep " +
           DescribeRetention(s.retain) + "\n";
    if (!s.tags.empty()) out += "    tags: " + DescribeTags(s.tags) + "\n";
    if (s.copy_tags) out += "    copies the volume's tags\n";
    if (now && policy.enabled) {
      auto next = NextRun(s, *now);
      out += "    next run: " + (next ? FormatTimestamp(*next) : std::string("never")) + "\n";
    }
  }
  return out;
}

}  // namespace blocksnap::policy
