#include "policy/time_types.h"

#include <cstdio>

namespace blocksnap::policy {

std::string FormatTimestamp(TimePoint t) {
  using namespace std::chrono;
  sys_days day = floor<days>(t);
  year_month_day ymd{day};
  hh_mm_ss hms{t - day};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", int(ymd.year()),
                unsigned(ymd.month()), unsigned(ymd.day()), int(hms.hours().count()),
                int(hms.minutes().count()), int(hms.seconds().count()));
  return buf;
}

std::string FormatLocal(LocalTime t) {
  std::string s = FormatTimestamp(TimePoint(t.time_since_epoch()));
  s.pop_back();  // drop the 'Z': a local reading has no offset
  return s;
}

bool ParseTimestamp(const std::string& text, TimePoint* out) {
  using namespace std::chrono;
  int y, mo, d, h, mi, s, n = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &n) != 6 ||
      n != 19) {
    return false;
  }
  year_month_day ymd{year(y), month(unsigned(mo)), day(unsigned(d))};
  if (!ymd.ok() || h > 23 || mi > 59 || s > 59 || h < 0 || mi < 0 || s < 0) return false;
  int64_t offset = 0;
  std::string rest = text.substr(19);
  if (rest == "Z") {
    offset = 0;
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
    int oh = 0, om = 0;
    if (std::sscanf(rest.c_str() + 1, "%2d:%2d", &oh, &om) != 2) return false;
    offset = (oh * 3600 + om * 60) * (rest[0] == '-' ? -1 : 1);
  } else {
    return false;
  }
  *out = TimePoint(sys_days(ymd)) + hours(h) + minutes(mi) + seconds(s) - seconds(offset);
  return true;
}

}  // namespace blocksnap::policy
