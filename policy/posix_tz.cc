#include "policy/posix_tz.h"

#include <chrono>

namespace blocksnap::policy {

namespace {

class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}
  bool done() const { return pos_ >= s_.size(); }
  char peek() const { return done() ? '\0' : s_[pos_]; }
  bool consume(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }

  // "CET" (3+ letters) or "<+0330>" (quoted form, any of [A-Za-z0-9+-]).
  bool Abbr(std::string* out) {
    size_t start = pos_;
    if (consume('<')) {
      while (!done() && peek() != '>') ++pos_;
      if (!consume('>')) return false;
      *out = std::string(s_.substr(start + 1, pos_ - start - 2));
      return out->size() >= 1;
    }
    while (!done() && ((peek() >= 'A' && peek() <= 'Z') || (peek() >= 'a' && peek() <= 'z'))) {
      ++pos_;
    }
    *out = std::string(s_.substr(start, pos_ - start));
    return out->size() >= 3;
  }

  bool Number(int max, int* out) {
    size_t start = pos_;
    int v = 0;
    while (!done() && peek() >= '0' && peek() <= '9') {
      v = v * 10 + (peek() - '0');
      if (v > max) return false;
      ++pos_;
    }
    *out = v;
    return pos_ > start;
  }

  // [+-]hh[:mm[:ss]], hours up to max_hours.
  bool Time(int max_hours, int32_t* out) {
    int sign = 1;
    if (consume('-')) {
      sign = -1;
    } else {
      consume('+');
    }
    int h = 0, m = 0, s = 0;
    if (!Number(max_hours, &h)) return false;
    if (consume(':')) {
      if (!Number(59, &m)) return false;
      if (consume(':') && !Number(59, &s)) return false;
    }
    *out = sign * (h * 3600 + m * 60 + s);
    return true;
  }

  bool Date(PosixDate* d) {
    if (consume('M')) {
      d->kind = PosixDate::Kind::kMonthWeekDay;
      if (!Number(12, &d->month) || d->month < 1 || !consume('.')) return false;
      if (!Number(5, &d->week) || d->week < 1 || !consume('.')) return false;
      if (!Number(6, &d->weekday)) return false;
    } else if (consume('J')) {
      d->kind = PosixDate::Kind::kJulian1;
      if (!Number(365, &d->day) || d->day < 1) return false;
    } else {
      d->kind = PosixDate::Kind::kJulian0;
      if (!Number(365, &d->day)) return false;
    }
    d->time = 7200;
    if (consume('/') && !Time(167, &d->time)) return false;
    return true;
  }

 private:
  std::string_view s_;
  size_t pos_ = 0;
};

bool IsLeap(int y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

// Seconds since the epoch of local midnight starting the rule's day in `year`.
int64_t LocalDayStart(const PosixDate& d, int year) {
  using namespace std::chrono;
  sys_days jan1 = sys_days(std::chrono::year(year) / January / 1);
  sys_days day;
  switch (d.kind) {
    case PosixDate::Kind::kJulian1:
      day = jan1 + days(d.day - 1 + ((IsLeap(year) && d.day >= 60) ? 1 : 0));
      break;
    case PosixDate::Kind::kJulian0:
      day = jan1 + days(d.day);
      break;
    case PosixDate::Kind::kMonthWeekDay:
    default: {
      std::chrono::month m(static_cast<unsigned>(d.month));
      weekday wd(static_cast<unsigned>(d.weekday));
      if (d.week == 5) {
        day = sys_days(std::chrono::year(year) / m / wd[last]);
      } else {
        day = sys_days(std::chrono::year(year) / m / wd[static_cast<unsigned>(d.week)]);
      }
      break;
    }
  }
  return day.time_since_epoch().count() * int64_t{86400};
}

int YearOf(int64_t t) {
  using namespace std::chrono;
  sys_days day = floor<days>(sys_seconds(seconds(t)));
  return int(year_month_day(day).year());
}

}  // namespace

Expected<PosixTz> ParsePosixTz(std::string_view text) {
  auto bad = [&]() { return MakeError("bad POSIX TZ rule '" + std::string(text) + "'"); };
  Reader r(text);
  PosixTz tz;
  int32_t off = 0;
  if (!r.Abbr(&tz.std_type.abbr) || !r.Time(24, &off)) return bad();
  tz.std_type.utc_offset = -off;  // POSIX counts west of Greenwich as positive
  if (r.done()) return tz;
  ZoneType dst;
  dst.is_dst = true;
  if (!r.Abbr(&dst.abbr)) return bad();
  dst.utc_offset = tz.std_type.utc_offset + 3600;
  if (r.peek() != ',' && !r.done()) {
    if (!r.Time(24, &off)) return bad();
    dst.utc_offset = -off;
  }
  tz.dst_type = dst;
  if (r.done()) {  // POSIX leaves the default to the implementation; tzcode uses US rules
    tz.start = {PosixDate::Kind::kMonthWeekDay, 0, 3, 2, 0, 7200};
    tz.end = {PosixDate::Kind::kMonthWeekDay, 0, 11, 1, 0, 7200};
    return tz;
  }
  if (!r.consume(',') || !r.Date(&tz.start) || !r.consume(',') || !r.Date(&tz.end)) {
    return bad();
  }
  if (!r.done()) return bad();
  return tz;
}

std::pair<int64_t, int64_t> PosixTransitions(const PosixTz& tz, int year) {
  int32_t dst_off = tz.dst_type ? tz.dst_type->utc_offset : tz.std_type.utc_offset;
  int64_t start = LocalDayStart(tz.start, year) + tz.start.time - tz.std_type.utc_offset;
  int64_t end = LocalDayStart(tz.end, year) + tz.end.time - dst_off;
  return {start, end};
}

const ZoneType& PosixTypeAt(const PosixTz& tz, int64_t t) {
  if (!tz.dst_type) return tz.std_type;
  int year = YearOf(t + tz.std_type.utc_offset);
  auto [start, end] = PosixTransitions(tz, year);
  bool dst = start < end ? (t >= start && t < end) : (t < end || t >= start);
  return dst ? *tz.dst_type : tz.std_type;
}

}  // namespace blocksnap::policy
