// Reading the daemon's a{sv} dictionaries into JSON, for `--json` output and the tables.
// One reader for every command group; the JSON type (ordered or not) is the caller's.
#pragma once

#include <systemd/sd-bus.h>

#include <cctype>
#include <cerrno>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bus/basic_codec.h"

namespace blocksnap::ctl {

// "NextRun" -> "next_run", "VolumeId" -> "volume_id".
inline std::string SnakeCase(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (std::isupper(static_cast<unsigned char>(c))) {
      if (!out.empty()) out += '_';
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else {
      out += c;
    }
  }
  return out;
}

// One variant of the types the daemon's dictionaries carry (s b u t x d as a{ss}); any other
// type is skipped and reads as null. Returns a negative errno on a malformed message.
template <typename Json>
int ReadVariantJson(sd_bus_message* m, Json* out) {
  char type = 0;
  const char* contents = nullptr;
  int r = sd_bus_message_peek_type(m, &type, &contents);
  if (r <= 0) return r < 0 ? r : -EBADMSG;
  if ((r = sd_bus_message_enter_container(m, 'v', contents)) < 0) return r;
  const std::string_view sig = contents;
  if (sig == "s") {
    const char* s = nullptr;
    if ((r = sd_bus_message_read_basic(m, 's', &s)) >= 0) *out = s;
  } else if (sig == "b") {
    int b = 0;
    if ((r = sd_bus_message_read_basic(m, 'b', &b)) >= 0) *out = b != 0;
  } else if (sig == "u") {
    uint32_t u = 0;
    if ((r = sd_bus_message_read_basic(m, 'u', &u)) >= 0) *out = u;
  } else if (sig == "t") {
    uint64_t t = 0;
    if ((r = sd_bus_message_read_basic(m, 't', &t)) >= 0) *out = t;
  } else if (sig == "x") {
    int64_t x = 0;
    if ((r = sd_bus_message_read_basic(m, 'x', &x)) >= 0) *out = x;
  } else if (sig == "d") {
    double d = 0;
    if ((r = sd_bus_message_read_basic(m, 'd', &d)) >= 0) *out = d;
  } else if (sig == "as") {
    std::vector<std::string> v;
    if ((r = ReadStrings(m, &v)) >= 0) *out = v;
  } else if (sig == "a{ss}") {
    Tags tags;
    if ((r = ReadTags(m, &tags)) >= 0) *out = tags;
  } else {
    r = sd_bus_message_skip(m, contents);
    *out = nullptr;
  }
  if (r < 0) return r;
  return sd_bus_message_exit_container(m);
}

// One a{sv} as a JSON object; snake_case_keys renames "NextRun" to "next_run".
template <typename Json>
int ReadDictJson(sd_bus_message* m, Json* out, bool snake_case_keys) {
  *out = Json::object();
  int r = sd_bus_message_enter_container(m, 'a', "{sv}");
  if (r < 0) return r;
  while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
    const char* key = nullptr;
    if ((r = sd_bus_message_read_basic(m, 's', &key)) < 0) return r;
    Json value;
    if ((r = ReadVariantJson(m, &value)) < 0) return r;
    (*out)[snake_case_keys ? SnakeCase(key) : std::string(key)] = std::move(value);
    if ((r = sd_bus_message_exit_container(m)) < 0) return r;
  }
  if (r < 0) return r;
  return sd_bus_message_exit_container(m);
}

}  // namespace blocksnap::ctl
