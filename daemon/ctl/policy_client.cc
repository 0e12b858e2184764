#include "ctl/policy_client.h"

#include <cctype>

#include "bus/basic_codec.h"

namespace blocksnap::ctl {
namespace {

// "NextRun" -> "next_run", "VolumeId" -> "volume_id".
std::string SnakeCase(std::string_view key) {
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

// Reads one variant of the types the scheduler's dictionaries use (s b u t as a{ss}).
int ReadVariant(sd_bus_message* m, Json* out) {
  char type = 0;
  const char* contents = nullptr;
  int r = sd_bus_message_peek_type(m, &type, &contents);
  if (r <= 0) return r < 0 ? r : -EBADMSG;
  if ((r = sd_bus_message_enter_container(m, 'v', contents)) < 0) return r;
  std::string_view sig = contents;
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

int ReadDict(sd_bus_message* m, Json* out) {
  *out = Json::object();
  int r = sd_bus_message_enter_container(m, 'a', "{sv}");
  if (r < 0) return r;
  while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
    const char* key = nullptr;
    if ((r = sd_bus_message_read_basic(m, 's', &key)) < 0) return r;
    Json value;
    if ((r = ReadVariant(m, &value)) < 0) return r;
    (*out)[SnakeCase(key)] = std::move(value);
    if ((r = sd_bus_message_exit_container(m)) < 0) return r;
  }
  if (r < 0) return r;
  return sd_bus_message_exit_container(m);
}

int ReadDictArray(sd_bus_message* m, Json* out) {
  *out = Json::array();
  int r = sd_bus_message_enter_container(m, 'a', "a{sv}");
  if (r < 0) return r;
  while ((r = sd_bus_message_at_end(m, false)) == 0) {
    Json item;
    if ((r = ReadDict(m, &item)) < 0) return r;
    out->push_back(std::move(item));
  }
  if (r < 0) return r;
  return sd_bus_message_exit_container(m);
}

template <typename Append>
Result<Json> CallArray(BusClient& client, const char* method, Append&& append) {
  MessagePtr reply;
  BS_RETURN_IF_ERROR(client.CallManager(method, append, &reply));
  Json out;
  if (int r = ReadDictArray(reply.get(), &out); r < 0) return client.MessageError(r);
  return out;
}

}  // namespace

Result<Json> ListPolicies(BusClient& client) {
  return CallArray(client, "ListPolicies", [](sd_bus_message*) { return 0; });
}

Result<Json> PlanPolicies(BusClient& client, uint32_t days) {
  return CallArray(client, "PlanPolicies",
                   [&](sd_bus_message* m) { return sd_bus_message_append(m, "u", days); });
}

Result<Json> RunPolicy(BusClient& client, const std::string& name, const std::string& schedule) {
  return CallArray(client, "RunPolicy", [&](sd_bus_message* m) {
    return sd_bus_message_append(m, "ss", name.c_str(), schedule.c_str());
  });
}

Result<Json> GetPolicy(BusClient& client, const std::string& name) {
  MessagePtr reply;
  BS_RETURN_IF_ERROR(client.CallManager(
      "GetPolicy", [&](sd_bus_message* m) { return sd_bus_message_append(m, "s", name.c_str()); },
      &reply));
  Json out;
  if (int r = ReadDict(reply.get(), &out); r < 0) return client.MessageError(r);
  return out;
}

Result<std::vector<std::string>> ListPolicyErrors(BusClient& client) {
  MessagePtr reply;
  BS_RETURN_IF_ERROR(client.CallManager(
      "ListPolicyErrors", [](sd_bus_message*) { return 0; }, &reply));
  std::vector<std::string> errors;
  if (int r = ReadStrings(reply.get(), &errors); r < 0) return client.MessageError(r);
  return errors;
}

Result<Json> ReloadPolicies(BusClient& client) {
  MessagePtr reply;
  BS_RETURN_IF_ERROR(client.CallManager(
      "ReloadPolicies", [](sd_bus_message*) { return 0; }, &reply));
  uint32_t count = 0;
  std::vector<std::string> errors;
  int r = sd_bus_message_read(reply.get(), "u", &count);
  if (r >= 0) r = ReadStrings(reply.get(), &errors);
  if (r < 0) return client.MessageError(r);
  return Json{{"policies", count}, {"errors", errors}};
}

}  // namespace blocksnap::ctl
