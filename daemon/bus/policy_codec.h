// Marshalling of the scheduler's answers (docs/DBUS.md, "Policies"): the policy dictionary
// of ListPolicies/GetPolicy and the action dictionary of PlanPolicies/RunPolicy/SetTime.
// Dictionaries (a{sv}) so that keys can be added within API version 1.
#pragma once

#include <systemd/sd-bus.h>

#include <string>
#include <vector>

#include "policy/scheduler.h"
#include "scheduler/scheduler.h"

namespace blocksnap {

inline constexpr const char* kPolicyDictSignature = "a{sv}";

// Name s, Description s, Enabled b, File s, Match s, Targets a{ss}, Schedules as,
// Volumes as, LastSlots a{ss}, LastRun s, LastResult s, NextRun s ("" = none); plus Text s
// (the DescribePolicy text) when `text` is not empty.
int AppendPolicyDict(sd_bus_message* m, const scheduler::PolicyStatus& st,
                     const std::string& text = "");

// Kind s (create|delete), At s, Policy s, Schedules as, VolumeId s, Volume s, Snapshot s,
// Slot s, Tags a{ss}, Reason s, Error s, Line s (Action::ToString()).
int AppendActionDict(sd_bus_message* m, const policy::Action& a);
// An aa{sv} of actions.
int AppendActions(sd_bus_message* m, const std::vector<policy::Action>& actions);

}  // namespace blocksnap
