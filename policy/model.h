// The policy model: what a parsed and validated policy file means. Built by ParsePolicyFile
// (parser.h); read by the schedule math, retention and the scheduler step.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "policy/cron.h"
#include "policy/tags.h"
#include "policy/time_zone.h"

namespace blocksnap::policy {

// Where something was written: for "file:line:col: reason" messages (1-based).
struct SourceLocation {
  std::string file;
  int line = 0;
  int column = 0;
  std::string ToString() const {
    return file + ":" + std::to_string(line) + ":" + std::to_string(column);
  }
};

// When a schedule fires. Either an interval (optionally anchored at times of day) or cron;
// always read on the wall clock of `zone`.
struct CreateRule {
  enum class Kind { kInterval, kCron };
  Kind kind = Kind::kInterval;
  // kInterval: a divisor of 24h (1m..24h), or a whole number of days up to 52 weeks.
  std::chrono::minutes every{24 * 60};
  // kInterval: anchors as minutes after local midnight, sorted, unique. Empty = {00:00}.
  std::vector<int> times;
  // kCron: the parsed expression.
  CronSpec cron;
  std::string timezone = "UTC";
  std::shared_ptr<const TimeZone> zone = TimeZone::Utc();
};

// Sanoid-style tiers: keep the newest snapshot of each of the last N hours, days, ISO
// weeks, months and years (local time of the schedule's zone). 0 = tier unused.
struct Tiers {
  int hourly = 0;
  int daily = 0;
  int weekly = 0;
  int monthly = 0;
  int yearly = 0;
};

// Which snapshots a schedule keeps. Either count and/or age, or tiers.
struct RetainRule {
  std::optional<int> count;                 // 1..1000: keep the newest N
  std::optional<std::chrono::minutes> age;  // delete when older than this
  std::string age_text;                     // the age as written ("5d"), for messages
  std::optional<Tiers> tiers;
};

struct Schedule {
  std::string name;
  CreateRule create;
  RetainRule retain;
  Tags tags;  // values may hold {policy}, {schedule}, {volume}, {timestamp}
  bool copy_tags = false;
  SourceLocation where;  // of the schedule's name
};

enum class Match { kAny, kAll };

struct Policy {
  std::string name;
  std::string description;
  bool enabled = true;
  Tags target_tags;  // at least one
  Match match = Match::kAny;
  std::vector<Schedule> schedules;  // 1..4, unique names
  SourceLocation where;             // of the policy's name
};

}  // namespace blocksnap::policy
