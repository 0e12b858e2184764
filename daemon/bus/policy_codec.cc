#include "bus/policy_codec.h"

#include "bus/basic_codec.h"

namespace blocksnap {
namespace {

int Entry(sd_bus_message* m, const char* key, const std::string& value) {
  const std::string text = ValidUtf8(value);  // names, descriptions, file names, errors
  return sd_bus_message_append(m, "{sv}", key, "s", text.c_str());
}

int EntryBool(sd_bus_message* m, const char* key, bool value) {
  return sd_bus_message_append(m, "{sv}", key, "b", static_cast<int>(value));
}

template <typename F>
int EntryWith(sd_bus_message* m, const char* key, const char* signature, F&& append) {
  int r = sd_bus_message_open_container(m, 'e', "sv");
  if (r >= 0) r = sd_bus_message_append_basic(m, 's', key);
  if (r >= 0) r = sd_bus_message_open_container(m, 'v', signature);
  if (r >= 0) r = append();
  if (r >= 0) r = sd_bus_message_close_container(m);
  if (r >= 0) r = sd_bus_message_close_container(m);
  return r;
}

std::string TimeOrEmpty(const std::optional<policy::TimePoint>& t) {
  return t ? policy::FormatTimestamp(*t) : std::string();
}

}  // namespace

int AppendPolicyDict(sd_bus_message* m, const scheduler::PolicyStatus& st,
                     const std::string& text) {
  const policy::Policy& p = st.policy;
  std::vector<std::string> schedules;
  for (const policy::Schedule& s : p.schedules) schedules.push_back(s.name);
  Tags slots;
  for (const auto& [name, t] : st.last_slot) slots[name] = policy::FormatTimestamp(t);
  int r = sd_bus_message_open_container(m, 'a', "{sv}");
  if (r >= 0) r = Entry(m, "Name", p.name);
  if (r >= 0) r = Entry(m, "Description", p.description);
  if (r >= 0) r = EntryBool(m, "Enabled", p.enabled);
  if (r >= 0) r = Entry(m, "File", p.where.file);
  if (r >= 0) r = Entry(m, "Match", p.match == policy::Match::kAll ? "all" : "any");
  if (r >= 0) r = EntryWith(m, "Targets", "a{ss}", [&] { return AppendTags(m, p.target_tags); });
  if (r >= 0) r = EntryWith(m, "Schedules", "as", [&] { return AppendStrings(m, schedules); });
  if (r >= 0) r = EntryWith(m, "Volumes", "as", [&] { return AppendStrings(m, st.volumes); });
  if (r >= 0) r = EntryWith(m, "LastSlots", "a{ss}", [&] { return AppendTags(m, slots); });
  if (r >= 0) r = Entry(m, "LastRun", st.last_run ? policy::FormatTimestamp(st.last_run->at) : "");
  if (r >= 0) r = Entry(m, "LastResult", st.last_run ? st.last_run->Summary() : "");
  if (r >= 0) r = Entry(m, "NextRun", TimeOrEmpty(st.next_run));
  if (r >= 0 && !text.empty()) r = Entry(m, "Text", text);
  if (r >= 0) r = sd_bus_message_close_container(m);
  return r;
}

int AppendActionDict(sd_bus_message* m, const policy::Action& a) {
  const bool create = a.kind == policy::Action::Kind::kCreate;
  int r = sd_bus_message_open_container(m, 'a', "{sv}");
  if (r >= 0) r = Entry(m, "Kind", create ? "create" : "delete");
  if (r >= 0) r = Entry(m, "At", policy::FormatTimestamp(a.at));
  if (r >= 0) r = Entry(m, "Policy", a.policy);
  if (r >= 0) r = EntryWith(m, "Schedules", "as", [&] { return AppendStrings(m, a.schedules); });
  if (r >= 0) r = Entry(m, "VolumeId", a.volume_id);
  if (r >= 0) r = Entry(m, "Volume", a.volume_name);
  if (r >= 0) r = Entry(m, "Snapshot", a.snapshot_id);
  if (r >= 0) r = Entry(m, "Slot", create ? policy::FormatTimestamp(a.slot) : "");
  if (r >= 0) r = EntryWith(m, "Tags", "a{ss}", [&] { return AppendTags(m, a.tags); });
  if (r >= 0) r = Entry(m, "Reason", a.reason);
  if (r >= 0) r = Entry(m, "Error", a.error);
  if (r >= 0) r = Entry(m, "Line", a.ToString());
  if (r >= 0) r = sd_bus_message_close_container(m);
  return r;
}

int AppendActions(sd_bus_message* m, const std::vector<policy::Action>& actions) {
  int r = sd_bus_message_open_container(m, 'a', "a{sv}");
  for (const policy::Action& a : actions)
    if (r >= 0) r = AppendActionDict(m, a);
  if (r >= 0) r = sd_bus_message_close_container(m);
  return r;
}

}  // namespace blocksnap
