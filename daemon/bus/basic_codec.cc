#include "bus/basic_codec.h"

namespace blocksnap {

int AppendText(sd_bus_message* m, std::string_view s) {
  const std::string text = ValidUtf8(s);
  return sd_bus_message_append_basic(m, 's', text.c_str());
}

int AppendTags(sd_bus_message* m, const Tags& tags) {
  int r = sd_bus_message_open_container(m, 'a', "{ss}");
  if (r < 0) return r;
  for (const auto& [key, value] : tags) {
    r = sd_bus_message_open_container(m, 'e', "ss");
    if (r >= 0) r = AppendText(m, key);
    if (r >= 0) r = AppendText(m, value);
    if (r >= 0) r = sd_bus_message_close_container(m);
    if (r < 0) return r;
  }
  return sd_bus_message_close_container(m);
}

int AppendStrings(sd_bus_message* m, const std::vector<std::string>& strings) {
  int r = sd_bus_message_open_container(m, 'a', "s");
  if (r < 0) return r;
  for (const std::string& s : strings) {
    r = AppendText(m, s);
    if (r < 0) return r;
  }
  return sd_bus_message_close_container(m);
}

int ReadTags(sd_bus_message* m, Tags* tags) {
  tags->clear();
  int r = sd_bus_message_enter_container(m, 'a', "{ss}");
  if (r < 0) return r;
  const char* key = nullptr;
  const char* value = nullptr;
  while ((r = sd_bus_message_read(m, "{ss}", &key, &value)) > 0) (*tags)[key] = value;
  if (r < 0) return r;
  return sd_bus_message_exit_container(m);
}

int ReadStrings(sd_bus_message* m, std::vector<std::string>* out) {
  out->clear();
  int r = sd_bus_message_enter_container(m, 'a', "s");
  if (r < 0) return r;
  const char* s = nullptr;
  while ((r = sd_bus_message_read(m, "s", &s)) > 0) out->emplace_back(s);
  if (r < 0) return r;
  return sd_bus_message_exit_container(m);
}

}  // namespace blocksnap
