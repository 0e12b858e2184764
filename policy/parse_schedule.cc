// The schedule part of the policy parser: create rule, retain rule, tags.
#include <algorithm>

#include "policy/duration.h"
#include "policy/yaml_reader.h"

namespace blocksnap::policy {

namespace {

// "03:00" -> 180. Exactly HH:MM, 00:00..23:59.
std::optional<int> ParseTimeOfDay(const std::string& s) {
  if (s.size() != 5 || s[2] != ':') return std::nullopt;
  for (size_t i : {0, 1, 3, 4}) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
  }
  int h = (s[0] - '0') * 10 + (s[1] - '0');
  int m = (s[3] - '0') * 10 + (s[4] - '0');
  if (h > 23 || m > 59) return std::nullopt;
  return h * 60 + m;
}

bool ParseCreate(YamlReader& r, const YAML::Node& node, const TimeZoneSource& zones,
                 CreateRule* out) {
  size_t before = r.error_count();
  if (!r.CheckMap(node, "create", {"every", "times", "cron", "timezone"})) return false;
  YAML::Node every = YamlReader::Find(node, "every");
  YAML::Node cron = YamlReader::Find(node, "cron");
  YAML::Node times = YamlReader::Find(node, "times");
  YAML::Node zone = YamlReader::Find(node, "timezone");
  if (!every.IsDefined() && !cron.IsDefined()) {
    r.Error(node, "create needs 'every' or 'cron'");
  } else if (every.IsDefined() && cron.IsDefined()) {
    r.Error(YamlReader::FindKey(node, "cron"), "create takes 'every' or 'cron', not both");
  } else if (every.IsDefined()) {
    out->kind = CreateRule::Kind::kInterval;
    if (auto text = r.String(every, "every")) {
      auto d = ParseDuration(*text);
      if (!d) {
        r.Error(every, d.error().message);
      } else if (*d > std::chrono::weeks(52)) {
        r.Error(every, "'every' must be at most 52w, got " + *text);
      } else if ((d->count() < 24 * 60 && (24 * 60) % d->count() != 0) ||
                 (d->count() > 24 * 60 && d->count() % (24 * 60) != 0)) {
        r.Error(every, "'every' must divide 24h or be a whole number of days, got " + *text);
      } else {
        out->every = *d;
      }
    }
  } else {
    out->kind = CreateRule::Kind::kCron;
    if (times.IsDefined()) {
      r.Error(YamlReader::FindKey(node, "times"), "'times' only goes with 'every', not 'cron'");
    }
    if (auto text = r.String(cron, "cron")) {
      auto spec = ParseCron(*text);
      if (!spec) {
        r.Error(cron, spec.error().message);
      } else {
        out->cron = std::move(spec).value();
      }
    }
  }
  if (times.IsDefined() && out->kind == CreateRule::Kind::kInterval) {
    if (!times.IsSequence()) {
      r.Error(times, "'times' must be a list of HH:MM times");
    } else if (times.size() == 0) {
      r.Error(times, "'times' must list at least one time");
    } else {
      for (const YAML::Node& t : times) {
        auto text = r.String(t, "times");
        if (!text) continue;
        auto minute = ParseTimeOfDay(*text);
        if (!minute) {
          r.Error(t, "bad time '" + *text + "' in 'times': expected HH:MM from 00:00 to 23:59");
        } else if (std::find(out->times.begin(), out->times.end(), *minute) != out->times.end()) {
          r.Error(t, "duplicate time '" + *text + "' in 'times'");
        } else {
          out->times.push_back(*minute);
        }
      }
      std::sort(out->times.begin(), out->times.end());
    }
  }
  if (zone.IsDefined()) {
    if (auto name = r.String(zone, "timezone")) {
      auto tz = LoadTimeZone(zones, *name);
      if (!tz) {
        r.Error(zone, tz.error().message);
      } else {
        out->timezone = *name;
        out->zone = std::move(tz).value();
      }
    }
  }
  return r.error_count() == before;
}

bool ParseRetain(YamlReader& r, const YAML::Node& node, RetainRule* out) {
  size_t before = r.error_count();
  if (!r.CheckMap(node, "retain",
                  {"count", "age", "hourly", "daily", "weekly", "monthly", "yearly"})) {
    return false;
  }
  if (YAML::Node n = YamlReader::Find(node, "count"); n.IsDefined()) {
    out->count = r.Int(n, "count", 1, 1000);
  }
  if (YAML::Node n = YamlReader::Find(node, "age"); n.IsDefined()) {
    if (auto text = r.String(n, "age")) {
      auto d = ParseDuration(*text);
      if (!d) {
        r.Error(n, d.error().message);
      } else {
        out->age = *d;
        out->age_text = *text;
      }
    }
  }
  Tiers tiers;
  std::pair<const char*, int*> tier_keys[] = {{"hourly", &tiers.hourly},
                                              {"daily", &tiers.daily},
                                              {"weekly", &tiers.weekly},
                                              {"monthly", &tiers.monthly},
                                              {"yearly", &tiers.yearly}};
  YAML::Node first_tier(YAML::NodeType::Undefined);
  for (auto& [key, field] : tier_keys) {
    YAML::Node n = YamlReader::Find(node, key);
    if (!n.IsDefined()) continue;
    if (!first_tier.IsDefined()) first_tier.reset(YamlReader::FindKey(node, key));
    if (auto v = r.Int(n, key, 0, 1000)) *field = *v;
    out->tiers = tiers;
  }
  bool count_or_age =
      YamlReader::Find(node, "count").IsDefined() || YamlReader::Find(node, "age").IsDefined();
  if (first_tier.IsDefined() && count_or_age) {
    r.Error(first_tier, "retain takes 'count'/'age' or tiers, not both");
  } else if (!first_tier.IsDefined() && !count_or_age) {
    r.Error(node, "retain needs 'count', 'age' or tiers (hourly, daily, weekly, monthly, yearly)");
  } else if (out->tiers && r.error_count() == before) {
    out->tiers = tiers;
    if (tiers.hourly + tiers.daily + tiers.weekly + tiers.monthly + tiers.yearly == 0) {
      r.Error(node, "tiers must keep at least one snapshot");
    }
  }
  return r.error_count() == before;
}

}  // namespace

bool ParseTags(YamlReader& r, const YAML::Node& node, const std::string& key, bool templates,
               Tags* out) {
  size_t before = r.error_count();
  if (!node.IsMap()) {
    r.Error(node, "'" + key + "' must be a mapping of tag keys to values");
    return false;
  }
  for (const auto& kv : node) {
    auto k = r.String(kv.first, key);
    if (!k) continue;
    if (auto v = ValidateTagKey(*k); !v) {
      r.Error(kv.first, v.error().message);
      continue;
    }
    if (out->count(*k)) {
      r.Error(kv.first, "duplicate tag key '" + *k + "' in '" + key + "'");
      continue;
    }
    auto value = r.String(kv.second, *k);
    if (!value) continue;
    auto check = templates ? ValidateTagTemplate(*value) : ValidateTagValue(*value);
    if (!check) {
      r.Error(kv.second, check.error().message);
      continue;
    }
    (*out)[*k] = *value;
  }
  return r.error_count() == before;
}

bool ParseSchedule(YamlReader& r, const YAML::Node& node, const TimeZoneSource& zones,
                   Schedule* out) {
  size_t before = r.error_count();
  if (!r.CheckMap(node, "schedule", {"name", "create", "retain", "tags", "copy_tags"})) {
    return false;
  }
  if (r.Require(node, "schedule", "name")) {
    YAML::Node n = YamlReader::Find(node, "name");
    if (auto name = r.String(n, "name")) {
      if (auto v = ValidateName("schedule name", *name); !v) {
        r.Error(n, v.error().message);
      } else {
        out->name = *name;
        out->where = r.Where(n);
      }
    }
  }
  if (r.Require(node, "schedule", "create")) {
    ParseCreate(r, YamlReader::Find(node, "create"), zones, &out->create);
  }
  if (r.Require(node, "schedule", "retain")) {
    ParseRetain(r, YamlReader::Find(node, "retain"), &out->retain);
  }
  if (YAML::Node n = YamlReader::Find(node, "tags"); n.IsDefined()) {
    ParseTags(r, n, "tags", /*templates=*/true, &out->tags);
  }
  if (YAML::Node n = YamlReader::Find(node, "copy_tags"); n.IsDefined()) {
    if (auto v = r.Bool(n, "copy_tags")) out->copy_tags = *v;
  }
  return r.error_count() == before;
}

}  // namespace blocksnap::policy
