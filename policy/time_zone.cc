#include "policy/time_zone.h"

#include <algorithm>

namespace blocksnap::policy {

std::shared_ptr<const TimeZone> TimeZone::Utc() {
  static const std::shared_ptr<const TimeZone> kUtc = [] {
    auto tz = std::make_shared<TimeZone>(Key{});
    tz->name_ = "UTC";
    tz->types_.push_back(ZoneType{0, false, "UTC"});
    return tz;
  }();
  return kUtc;
}

Expected<std::shared_ptr<const TimeZone>> TimeZone::FromPosix(std::string name,
                                                              std::string_view rule) {
  auto parsed = ParsePosixTz(rule);
  if (!parsed) return parsed.error();
  auto tz = std::make_shared<TimeZone>(Key{});
  tz->name_ = std::move(name);
  tz->types_.push_back(parsed->std_type);
  tz->rule_ = std::move(parsed).value();
  return std::shared_ptr<const TimeZone>(tz);
}

const ZoneType& TimeZone::TypeAt(TimePoint tp) const {
  int64_t t = tp.time_since_epoch().count();
  if (transitions_.empty() || t >= transitions_.back().at) {
    if (rule_) return PosixTypeAt(*rule_, t);
    if (transitions_.empty()) return types_.front();
    return types_[transitions_.back().type];
  }
  // Before the first transition the first time type applies (RFC 8536 section 3.2).
  auto it = std::upper_bound(transitions_.begin(), transitions_.end(), t,
                             [](int64_t v, const Transition& tr) { return v < tr.at; });
  if (it == transitions_.begin()) return types_.front();
  return types_[std::prev(it)->type];
}

LocalTime TimeZone::ToLocal(TimePoint t) const {
  return LocalTime(t.time_since_epoch() + std::chrono::seconds(TypeAt(t).utc_offset));
}

std::vector<TimeZone::Change> TimeZone::ChangesIn(int64_t a, int64_t b) const {
  std::vector<Change> out;
  auto it = std::upper_bound(transitions_.begin(), transitions_.end(), a,
                             [](int64_t v, const Transition& tr) { return v < tr.at; });
  for (; it != transitions_.end() && it->at <= b; ++it) {
    out.push_back({it->at, types_[it->type].utc_offset});
  }
  const int64_t table_end = transitions_.empty() ? INT64_MIN : transitions_.back().at;
  if (rule_ && rule_->dst_type && b > table_end) {
    std::vector<Change> from_rule;
    int first_year = int(std::chrono::year_month_day(std::chrono::floor<std::chrono::days>(
                                                         TimePoint(std::chrono::seconds(a))))
                             .year());
    for (int y = first_year - 1; y <= first_year + 1; ++y) {
      auto [start, end] = PosixTransitions(*rule_, y);
      from_rule.push_back({start, rule_->dst_type->utc_offset});
      from_rule.push_back({end, rule_->std_type.utc_offset});
    }
    std::sort(from_rule.begin(), from_rule.end(),
              [](const Change& x, const Change& y) { return x.at < y.at; });
    for (const Change& c : from_rule) {
      if (c.at > a && c.at <= b && c.at > table_end) out.push_back(c);
    }
  }
  return out;
}

LocalResolution TimeZone::Resolve(LocalTime local) const {
  const int64_t l = local.time_since_epoch().count();
  // Offsets are within +-26h, so every instant that reads `l` lies within two days of it.
  const int64_t a = l - 2 * 86400, b = l + 2 * 86400;
  std::vector<Change> segments{{a, OffsetAt(a)}};
  for (const Change& c : ChangesIn(a, b)) segments.push_back(c);
  std::vector<int64_t> hits;
  for (size_t i = 0; i < segments.size(); ++i) {
    int64_t begin = segments[i].at;
    int64_t end = i + 1 < segments.size() ? segments[i + 1].at : b + 1;
    int64_t u = l - segments[i].offset;
    if (u >= begin && u < end && std::find(hits.begin(), hits.end(), u) == hits.end()) {
      hits.push_back(u);
    }
  }
  std::sort(hits.begin(), hits.end());
  auto tp = [](int64_t s) { return TimePoint(std::chrono::seconds(s)); };
  LocalResolution r;
  if (hits.size() == 1) {
    r.kind = LocalResolution::Kind::kUnique;
    r.first = r.second = tp(hits[0]);
  } else if (hits.size() >= 2) {
    r.kind = LocalResolution::Kind::kAmbiguous;
    r.first = tp(hits.front());
    r.second = tp(hits.back());
  } else {
    // A gap: find the forward change whose skipped span holds `l`.
    r.kind = LocalResolution::Kind::kGap;
    r.first = r.second = tp(l - segments.front().offset);
    for (size_t i = 1; i < segments.size(); ++i) {
      int32_t before = segments[i - 1].offset, after = segments[i].offset;
      if (after > before && l >= segments[i].at + before && l < segments[i].at + after) {
        r.first = r.second = tp(segments[i].at);
        break;
      }
    }
  }
  return r;
}

TimePoint TimeZone::FromLocal(LocalTime local) const {
  return Resolve(local).first;
}

std::chrono::seconds TimeZone::LargestFallBack(TimePoint from, TimePoint to) const {
  const int64_t a = from.time_since_epoch().count(), b = to.time_since_epoch().count();
  int32_t before = OffsetAt(a);
  int32_t largest = 0;
  for (const Change& c : ChangesIn(a, b)) {
    largest = std::max(largest, before - c.offset);
    before = c.offset;
  }
  return std::chrono::seconds(largest);
}

Expected<bool> ValidateZoneName(std::string_view name) {
  auto bad = [&](const char* why) {
    return MakeError("invalid time zone name '" + std::string(name) + "': " + why);
  };
  if (name.empty() || name.size() > 255) return bad("must be 1 to 255 characters");
  if (name.front() == '/') return bad("must not be an absolute path");
  for (char c : name) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '+' || c == '-' || c == '/';
    if (!ok) return bad("may only contain letters, digits and . _ + - /");
  }
  size_t start = 0;
  while (true) {
    size_t slash = name.find('/', start);
    std::string_view part =
        name.substr(start, slash == std::string_view::npos ? slash : slash - start);
    if (part.empty() || part == "." || part == "..") {
      return bad("must not contain empty, '.' or '..' components");
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return true;
}

Expected<std::shared_ptr<const TimeZone>> LoadTimeZone(const TimeZoneSource& source,
                                                       std::string_view name) {
  if (auto v = ValidateZoneName(name); !v) return v.error();
  if (name == "UTC") return TimeZone::Utc();
  auto bytes = source.Read(name);
  if (!bytes) return bytes.error();
  auto tz = TimeZone::FromTzif(std::string(name), *bytes);
  if (!tz) return MakeError("time zone '" + std::string(name) + "': " + tz.error().message);
  return tz;
}

Expected<std::string> NoTimeZones::Read(std::string_view name) const {
  return MakeError("unknown time zone '" + std::string(name) + "'");
}

}  // namespace blocksnap::policy
