#include "policy/tags.h"

namespace blocksnap::policy {

namespace {

bool IsKeyChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == ':' || c == '/' || c == '-';
}

bool IsNameChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

constexpr std::string_view kPlaceholders[] = {"policy", "schedule", "volume", "timestamp"};

}  // namespace

Expected<bool> ValidateTagKey(std::string_view key) {
  if (key.empty() || key.size() > kMaxTagKey) {
    return MakeError("tag key '" + std::string(key) + "' must be 1 to 128 characters");
  }
  for (char c : key) {
    if (!IsKeyChar(c)) {
      return MakeError("tag key '" + std::string(key) +
                       "' may only contain letters, digits and . _ : / -");
    }
  }
  if (key.substr(0, kReservedTagPrefix.size()) == kReservedTagPrefix) {
    return MakeError("tag key '" + std::string(key) + "' uses the reserved prefix 'blocksnap:'");
  }
  return true;
}

Expected<bool> ValidateTagValue(std::string_view value) {
  if (value.size() > kMaxTagValue) {
    return MakeError("tag value is longer than 256 characters");
  }
  for (char c : value) {
    if (c < 0x20 || c > 0x7e) return MakeError("tag value contains a non-printable character");
  }
  return true;
}

Expected<bool> ValidateName(std::string_view what, std::string_view name) {
  bool ok = !name.empty() && name.size() <= kMaxName && name != "." && name != "..";
  for (char c : name) ok = ok && IsNameChar(c);
  if (!ok) {
    return MakeError(std::string(what) + " '" + std::string(name) +
                     "' must be 1 to 64 characters of letters, digits and . _ -");
  }
  return true;
}

Expected<bool> ValidateTagTemplate(std::string_view value) {
  if (auto v = ValidateTagValue(value); !v) return v.error();
  for (size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if (c == '}') return MakeError("unmatched '}' in tag value '" + std::string(value) + "'");
    if (c != '{') continue;
    size_t close = value.find('}', i);
    if (close == std::string_view::npos) {
      return MakeError("unmatched '{' in tag value '" + std::string(value) + "'");
    }
    std::string_view name = value.substr(i + 1, close - i - 1);
    bool known = false;
    for (std::string_view p : kPlaceholders) known = known || p == name;
    if (!known) {
      return MakeError("unknown placeholder '{" + std::string(name) +
                       "}' in tag value (use {policy}, {schedule}, {volume} or {timestamp})");
    }
    i = close;
  }
  return true;
}

std::string ExpandTagTemplate(std::string_view value, const TagContext& context) {
  std::string out;
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] != '{') {
      out += value[i];
      continue;
    }
    size_t close = value.find('}', i);
    if (close == std::string_view::npos) {
      out += value.substr(i);
      break;
    }
    std::string_view name = value.substr(i + 1, close - i - 1);
    if (name == "policy") {
      out += context.policy;
    } else if (name == "schedule") {
      out += context.schedule;
    } else if (name == "volume") {
      out += context.volume;
    } else if (name == "timestamp") {
      out += FormatTimestamp(context.timestamp);
    } else {
      out += value.substr(i, close - i + 1);
    }
    i = close;
  }
  if (out.size() > kMaxTagValue) out.resize(kMaxTagValue);
  return out;
}

std::vector<std::string> SplitList(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    size_t comma = text.find(',');
    out.emplace_back(text.substr(0, comma));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

}  // namespace blocksnap::policy
