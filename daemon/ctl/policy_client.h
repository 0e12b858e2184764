// blocksnapctl's reading of the scheduler's answers (docs/DBUS.md, "Policies"): the a{sv}
// dictionaries of policies and actions become JSON objects with snake_case keys
// ("NextRun" -> "next_run"), which both the tables and --json print from.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ctl/bus_client.h"
#include "util/status.h"

namespace blocksnap::ctl {

using Json = nlohmann::ordered_json;

// Manager.ListPolicies / PlanPolicies(days) / RunPolicy(name, schedule): an array.
Result<Json> ListPolicies(BusClient& client);
Result<Json> PlanPolicies(BusClient& client, uint32_t days);
Result<Json> RunPolicy(BusClient& client, const std::string& name, const std::string& schedule);
// Manager.GetPolicy(name): one object (with "text", the daemon's description).
Result<Json> GetPolicy(BusClient& client, const std::string& name);
// Manager.ListPolicyErrors: the problems of the files the daemon skipped.
Result<std::vector<std::string>> ListPolicyErrors(BusClient& client);
// Manager.ReloadPolicies: {"policies": N, "errors": [...]}.
Result<Json> ReloadPolicies(BusClient& client);

}  // namespace blocksnap::ctl
