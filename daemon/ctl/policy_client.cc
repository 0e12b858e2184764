#include "ctl/policy_client.h"

#include "bus/basic_codec.h"
#include "ctl/dict_json.h"

namespace blocksnap::ctl {
namespace {

int ReadDict(sd_bus_message* m, Json* out) {
  return ReadDictJson(m, out, /*snake_case_keys=*/true);
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
  // Replies once every snapshot of the round is complete.
  return CallArray(client, "RunPolicy", [&](sd_bus_message* m) {
    int r = NoCallTimeout(m);
    return r < 0 ? r : sd_bus_message_append(m, "ss", name.c_str(), schedule.c_str());
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
  // Replies after a round already running has finished.
  BS_RETURN_IF_ERROR(client.CallManager("ReloadPolicies", NoCallTimeout, &reply));
  uint32_t count = 0;
  std::vector<std::string> errors;
  int r = sd_bus_message_read(reply.get(), "u", &count);
  if (r >= 0) r = ReadStrings(reply.get(), &errors);
  if (r < 0) return client.MessageError(r);
  return Json{{"policies", count}, {"errors", errors}};
}

}  // namespace blocksnap::ctl
