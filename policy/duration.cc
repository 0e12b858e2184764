#include "policy/duration.h"

#include <cstdint>

namespace blocksnap::policy {

namespace {

constexpr std::string_view kDurationHelp =
    "expected a positive integer followed by m, h, d or w (e.g. 30m, 12h, 5d, 2w)";

}  // namespace

Expected<std::chrono::minutes> ParseDuration(std::string_view text) {
  auto bad = [&]() {
    return MakeError("bad duration '" + std::string(text) + "': " + std::string(kDurationHelp));
  };
  if (text.size() < 2) return bad();
  int64_t unit = 0;
  switch (text.back()) {
    case 'm':
      unit = 1;
      break;
    case 'h':
      unit = 60;
      break;
    case 'd':
      unit = 24 * 60;
      break;
    case 'w':
      unit = 7 * 24 * 60;
      break;
    default:
      return bad();
  }
  std::string_view digits = text.substr(0, text.size() - 1);
  if (digits.size() > 9) return bad();
  int64_t n = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return bad();
    n = n * 10 + (c - '0');
  }
  if (n == 0) return bad();
  int64_t total = n * unit;
  if (total > int64_t{1000} * 7 * 24 * 60) {
    return MakeError("bad duration '" + std::string(text) + "': longer than 1000w");
  }
  return std::chrono::minutes(total);
}

std::string FormatAge(std::chrono::seconds age) {
  int64_t s = age.count();
  if (s < 0) s = 0;
  if (s >= 86400) return std::to_string(s / 86400) + "d";
  if (s >= 3600) return std::to_string(s / 3600) + "h";
  if (s >= 60) return std::to_string(s / 60) + "m";
  return std::to_string(s) + "s";
}

std::string FormatDuration(std::chrono::minutes d) {
  int64_t m = d.count();
  if (m > 0 && m % (7 * 24 * 60) == 0) return std::to_string(m / (7 * 24 * 60)) + "w";
  if (m > 0 && m % (24 * 60) == 0) return std::to_string(m / (24 * 60)) + "d";
  if (m > 0 && m % 60 == 0) return std::to_string(m / 60) + "h";
  return std::to_string(m) + "m";
}

}  // namespace blocksnap::policy
