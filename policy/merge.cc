#include "policy/merge.h"

#include <algorithm>
#include <map>
#include <tuple>

#include "policy/schedule.h"

namespace blocksnap::policy {

bool MatchesTarget(const Policy& policy, const Tags& volume_tags) {
  if (policy.target_tags.empty()) return false;
  bool any = false, all = true;
  for (const auto& [key, value] : policy.target_tags) {
    auto it = volume_tags.find(key);
    bool hit = it != volume_tags.end() && it->second == value;
    any = any || hit;
    all = all && hit;
  }
  return policy.match == Match::kAll ? all : any;
}

std::vector<DueSchedule> DueSchedules(const Policy& policy, const SchedulerState& state,
                                      TimePoint now) {
  std::vector<DueSchedule> due;
  for (size_t i = 0; i < policy.schedules.size(); ++i) {
    auto it = state.last_slot.find({policy.name, policy.schedules[i].name});
    if (it == state.last_slot.end()) continue;
    if (auto slot = DueSlot(policy.schedules[i], it->second, now)) due.push_back({i, *slot});
  }
  return due;
}

std::string ScheduleTagValue(const Policy& policy, const std::vector<DueSchedule>& due) {
  std::string out;
  for (const DueSchedule& d : due) {
    out += (out.empty() ? "" : ",") + policy.schedules[d.index].name;
  }
  return out;
}

Tags SnapshotTags(const Policy& policy, const std::vector<DueSchedule>& due,
                  const VolumeInfo& volume, TimePoint slot) {
  Tags tags;
  bool copy = std::any_of(due.begin(), due.end(), [&](const DueSchedule& d) {
    return policy.schedules[d.index].copy_tags;
  });
  if (copy) {
    for (const auto& [k, v] : volume.tags) {
      if (k.rfind(kReservedTagPrefix, 0) != 0) tags[k] = v;
    }
  }
  TagContext ctx{policy.name, ScheduleTagValue(policy, due), volume.name, slot};
  std::map<std::string, std::vector<std::string>> values;  // key -> distinct values, in order
  for (const DueSchedule& d : due) {
    for (const auto& [k, templ] : policy.schedules[d.index].tags) {
      std::string value = ExpandTagTemplate(templ, ctx);
      std::vector<std::string>& list = values[k];
      if (std::find(list.begin(), list.end(), value) == list.end()) list.push_back(value);
    }
  }
  Tags from_schedules;
  for (const auto& [k, list] : values) {
    std::string joined;
    for (const std::string& v : list) joined += (joined.empty() ? "" : ",") + v;
    from_schedules[k] = joined.size() <= kMaxTagValue ? joined : list.front();
  }
  for (auto& [k, v] : from_schedules) tags[k] = v;
  tags[std::string(kPolicyTag)] = policy.name;
  tags[std::string(kScheduleTag)] = ctx.schedule;
  tags[std::string(kSlotTag)] = FormatTimestamp(slot);
  return tags;
}

TimePoint RetentionTime(const SnapshotInfo& snapshot) {
  auto it = snapshot.tags.find(std::string(kSlotTag));
  TimePoint t;
  if (it != snapshot.tags.end() && ParseTimestamp(it->second, &t)) return t;
  return snapshot.created;
}

std::vector<std::string> OwningSchedules(const Policy& policy, const SnapshotInfo& snapshot) {
  auto p = snapshot.tags.find(std::string(kPolicyTag));
  auto s = snapshot.tags.find(std::string(kScheduleTag));
  if (p == snapshot.tags.end() || p->second != policy.name || s == snapshot.tags.end()) {
    return {};
  }
  return SplitList(s->second);
}

std::vector<Deletion> DecidePolicyRetention(const Policy& policy,
                                            const std::vector<SnapshotInfo>& snapshots,
                                            TimePoint now) {
  std::map<std::string, std::vector<std::string>> owners;  // snapshot id -> schedules
  std::map<std::string, const SnapshotInfo*> by_id;
  for (const SnapshotInfo& s : snapshots) {
    std::vector<std::string> o = OwningSchedules(policy, s);
    if (o.empty()) continue;
    owners[s.id] = std::move(o);
    by_id[s.id] = &s;
  }
  // votes[id][schedule] = reason, for every schedule that would delete it.
  std::map<std::string, std::map<std::string, std::string>> votes;
  for (const Schedule& sched : policy.schedules) {
    std::vector<RetainCandidate> mine;
    for (const auto& [id, names] : owners) {
      if (std::find(names.begin(), names.end(), sched.name) != names.end()) {
        const SnapshotInfo& s = *by_id[id];
        mine.push_back({id, RetentionTime(s), s.locked, s.sequence});
      }
    }
    for (Deletion& d : DecideRetention(sched.retain, *sched.create.zone, mine, now)) {
      votes[d.id][sched.name] = std::move(d.reason);
    }
  }
  std::vector<Deletion> out;
  for (const auto& [id, names] : owners) {
    auto v = votes.find(id);
    if (v == votes.end()) continue;
    bool all = std::all_of(names.begin(), names.end(),
                           [&](const std::string& n) { return v->second.count(n) > 0; });
    if (!all) continue;
    std::string reason;
    if (names.size() == 1) {
      reason = v->second.begin()->second;
    } else {
      for (const Schedule& sched : policy.schedules) {
        auto r = v->second.find(sched.name);
        if (r == v->second.end()) continue;
        reason += (reason.empty() ? "" : "; ") + sched.name + ": " + r->second;
      }
    }
    out.push_back({id, reason});
  }
  std::sort(out.begin(), out.end(), [&](const Deletion& a, const Deletion& b) {
    const SnapshotInfo& x = *by_id[a.id];
    const SnapshotInfo& y = *by_id[b.id];
    return std::tie(x.sequence, x.created, x.id) < std::tie(y.sequence, y.created, y.id);
  });
  return out;
}

}  // namespace blocksnap::policy
