#include "policy/cron.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <vector>

namespace blocksnap::policy {

namespace {

struct Field {
  const char* name;
  int lo;
  int hi;
  const char* const* names;  // names for lo.., or nullptr
};

constexpr const char* kMonthNames[] = {"jan", "feb", "mar", "apr", "may", "jun",  "jul",
                                       "aug", "sep", "oct", "nov", "dec", nullptr};
constexpr const char* kDayNames[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", nullptr};

constexpr Field kFields[] = {
    {"minute", 0, 59, nullptr},       {"hour", 0, 23, nullptr},
    {"day-of-month", 1, 31, nullptr}, {"month", 1, 12, kMonthNames},
    {"day-of-week", 0, 7, kDayNames},
};

// Parses one value: a number or (where the field has them) a three-letter name.
bool ParseValue(const Field& f, std::string_view s, int* out, std::string* why) {
  if (s.empty()) {
    *why = "empty value";
    return false;
  }
  if (std::isdigit(static_cast<unsigned char>(s[0]))) {
    int v = 0;
    for (char c : s) {
      if (!std::isdigit(static_cast<unsigned char>(c)) || v > 1000) {
        *why = "'" + std::string(s) + "' is not a number";
        return false;
      }
      v = v * 10 + (c - '0');
    }
    if (v < f.lo || v > f.hi) {
      *why = std::to_string(v) + " is out of range " + std::to_string(f.lo) + "-" +
             std::to_string(f.hi);
      return false;
    }
    *out = v;
    return true;
  }
  if (f.names != nullptr && s.size() == 3) {
    std::string lower;
    for (char c : s) lower += char(std::tolower(static_cast<unsigned char>(c)));
    for (int i = 0; f.names[i] != nullptr; ++i) {
      if (lower == f.names[i]) {
        *out = f.lo + i;
        return true;
      }
    }
  }
  *why = "unknown value '" + std::string(s) + "'";
  return false;
}

// Parses a comma list into bits lo..hi of `bits` (a vector<bool> indexed by value).
bool ParseField(const Field& f, std::string_view text, std::vector<bool>* bits, bool* star,
                std::string* why) {
  const std::string_view whole = text;
  bits->assign(f.hi + 1, false);
  // As in Vixie cron and cronie, a field that starts with '*' ("*", "*/2") does not restrict
  // the day: with a '*' day field the other one alone decides (AND), see MatchesDay.
  *star = !text.empty() && text[0] == '*';
  while (true) {
    size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    int step = 1;
    size_t slash = item.find('/');
    if (slash != std::string_view::npos) {
      std::string_view st = item.substr(slash + 1);
      Field step_field{f.name, 1, f.hi - f.lo + 1, nullptr};
      if (!ParseValue(step_field, st, &step, why)) {
        *why = "bad step: " + *why;
        return false;
      }
      item = item.substr(0, slash);
    }
    int lo, hi;
    if (item == "*") {
      lo = f.lo;
      hi = f.hi == 7 ? 6 : f.hi;
    } else {
      size_t dash = item.find('-');
      if (!ParseValue(f, item.substr(0, dash), &lo, why)) return false;
      hi = lo;
      if (dash != std::string_view::npos) {
        if (!ParseValue(f, item.substr(dash + 1), &hi, why)) return false;
        if (hi < lo) {
          *why = "range '" + std::string(item) + "' runs backwards";
          return false;
        }
      } else if (slash != std::string_view::npos) {
        if (f.hi == 7 && lo == 7) lo = 0;  // Sunday: "7/2" is "0/2"
        hi = f.hi == 7 ? 6 : f.hi;         // "a/n" means a, a+n, ... to the end
      }
    }
    for (int v = lo; v <= hi; v += step) (*bits)[v] = true;
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  if (std::find(bits->begin(), bits->end(), true) == bits->end()) {
    *why = "'" + std::string(whole) + "' selects no value";
    return false;
  }
  return true;
}

}  // namespace

bool CronSpec::MatchesDay(std::chrono::year_month_day date) const {
  if (!months[unsigned(date.month())]) return false;
  bool dom = days[unsigned(date.day())];
  bool dow = weekdays[std::chrono::weekday(std::chrono::sys_days(date)).c_encoding()];
  if (days_restricted && weekdays_restricted) return dom || dow;
  return dom && dow;
}

Expected<CronSpec> ParseCron(std::string_view text) {
  std::string expr(text);
  if (expr == "@yearly" || expr == "@annually") expr = "0 0 1 1 *";
  if (expr == "@monthly") expr = "0 0 1 * *";
  if (expr == "@weekly") expr = "0 0 * * 0";
  if (expr == "@daily" || expr == "@midnight") expr = "0 0 * * *";
  if (expr == "@hourly") expr = "0 * * * *";
  const std::string prefix = "bad cron expression '" + std::string(text) + "': ";
  std::vector<std::string_view> parts;
  std::string_view rest = expr;
  while (!rest.empty()) {
    size_t start = rest.find_first_not_of(" \t");
    if (start == std::string_view::npos) break;
    rest.remove_prefix(start);
    size_t end = rest.find_first_of(" \t");
    parts.push_back(rest.substr(0, end));
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
  }
  if (parts.size() != 5) {
    return MakeError(prefix +
                     "expected 5 fields (minute hour day-of-month month day-of-week), "
                     "got " +
                     std::to_string(parts.size()));
  }
  CronSpec spec;
  spec.text = std::string(text);
  std::array<std::vector<bool>, 5> bits;
  std::array<bool, 5> star{};
  for (size_t i = 0; i < 5; ++i) {
    std::string why;
    if (!ParseField(kFields[i], parts[i], &bits[i], &star[i], &why)) {
      return MakeError(prefix + kFields[i].name + " field: " + why);
    }
  }
  for (int v = 0; v < 60; ++v) spec.minutes[v] = bits[0][v];
  for (int v = 0; v < 24; ++v) spec.hours[v] = bits[1][v];
  for (int v = 1; v <= 31; ++v) spec.days[v] = bits[2][v];
  for (int v = 1; v <= 12; ++v) spec.months[v] = bits[3][v];
  for (int v = 0; v <= 7; ++v) {
    if (bits[4][v]) spec.weekdays[v % 7] = true;
  }
  spec.days_restricted = !star[2];
  spec.weekdays_restricted = !star[4];
  if (!spec.weekdays_restricted || !spec.days_restricted) {
    // Only the day-of-month field limits the days: it must fit some selected month.
    static constexpr int kMaxDay[] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool possible = false;
    for (int m = 1; m <= 12; ++m) {
      for (int d = 1; d <= kMaxDay[m] && !possible; ++d) {
        possible = spec.months[m] && spec.days[d];
      }
    }
    if (!possible) return MakeError(prefix + "no selected month has the selected days");
  }
  return spec;
}

}  // namespace blocksnap::policy
