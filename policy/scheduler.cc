#include "policy/scheduler.h"

#include <algorithm>

#include "policy/schedule.h"

namespace blocksnap::policy {

std::string Action::ToString() const {
  std::string out = FormatTimestamp(at);
  std::string sched;
  for (const std::string& s : schedules) sched += (sched.empty() ? "" : ",") + s;
  if (kind == Kind::kCreate) {
    out += " create " + volume_name + " policy=" + policy + " schedules=" + sched;
    if (slot != at) out += " slot=" + FormatTimestamp(slot);
    if (!snapshot_id.empty()) out += " snapshot=" + snapshot_id;
  } else {
    out += " delete " + snapshot_id + " of " + volume_name + " policy=" + policy + ": " + reason;
  }
  if (!error.empty()) out += " FAILED: " + error;
  return out;
}

namespace {

// One kCreate per volume `policy` targets, for the due schedules merged.
std::vector<Action> CreatesFor(const Policy& policy, const std::vector<DueSchedule>& due,
                               TimePoint slot, const std::vector<VolumeInfo>& volumes,
                               TimePoint now) {
  std::vector<std::string> names;
  for (const DueSchedule& d : due) names.push_back(policy.schedules[d.index].name);
  std::vector<Action> creates;
  for (const VolumeInfo& v : volumes) {
    if (!MatchesTarget(policy, v.tags)) continue;
    Action a;
    a.kind = Action::Kind::kCreate;
    a.at = now;
    a.policy = policy.name;
    a.schedules = names;
    a.volume_id = v.id;
    a.volume_name = v.name;
    a.slot = slot;
    a.tags = SnapshotTags(policy, due, v, slot);
    creates.push_back(std::move(a));
  }
  return creates;
}

// A saved slot after `now` (see Step): kept if it is the next slot anyway, else reset.
void ResetFutureSlot(const Policy& policy, const Schedule& s, TimePoint now, TimePoint& saved,
                     std::vector<std::string>* warnings) {
  std::optional<TimePoint> next = NextRun(s, now);
  if (next && *next >= saved) return;
  const TimePoint resume = LatestRun(s.create, now).value_or(now);
  if (warnings) {
    warnings->push_back("policy " + policy.name + " schedule " + s.name + ": saved slot " +
                        FormatTimestamp(saved) + " is later than now (" + FormatTimestamp(now) +
                        "): the clock was ahead or stepped back; resuming from " +
                        FormatTimestamp(resume) + ", next slot " +
                        (next ? FormatTimestamp(*next) : std::string("none")));
  }
  saved = resume;
}

}  // namespace

std::vector<Action> Step(const std::vector<Policy>& policies, SchedulerState& state,
                         const std::vector<VolumeInfo>& volumes, TimePoint now,
                         std::vector<std::string>* warnings) {
  std::vector<Action> creates;
  for (const Policy& policy : policies) {
    for (const Schedule& s : policy.schedules) {
      // First sight of a schedule: start counting from now.
      auto [it, fresh] = state.last_slot.try_emplace({policy.name, s.name}, now);
      if (!fresh && it->second > now) ResetFutureSlot(policy, s, now, it->second, warnings);
    }
    std::vector<DueSchedule> due = DueSchedules(policy, state, now);
    if (due.empty()) continue;
    TimePoint slot = due.front().slot;
    for (const DueSchedule& d : due) {
      state.last_slot[{policy.name, policy.schedules[d.index].name}] = d.slot;
      slot = std::max(slot, d.slot);
    }
    if (!policy.enabled) continue;
    for (Action& a : CreatesFor(policy, due, slot, volumes, now)) creates.push_back(std::move(a));
  }
  return creates;
}

std::vector<Action> Retain(const Policy& policy, const VolumeInfo& volume,
                           const std::vector<SnapshotInfo>& snapshots, TimePoint now) {
  std::vector<SnapshotInfo> mine;
  for (const SnapshotInfo& s : snapshots) {
    if (s.volume_id == volume.id) mine.push_back(s);
  }
  std::vector<Action> out;
  for (Deletion& d : DecidePolicyRetention(policy, mine, now)) {
    Action a;
    a.kind = Action::Kind::kDelete;
    a.at = now;
    a.policy = policy.name;
    for (const SnapshotInfo& s : mine) {
      if (s.id == d.id) a.schedules = OwningSchedules(policy, s);
    }
    a.volume_id = volume.id;
    a.volume_name = volume.name;
    a.snapshot_id = d.id;
    a.reason = std::move(d.reason);
    out.push_back(std::move(a));
  }
  return out;
}

std::optional<TimePoint> NextWake(const std::vector<Policy>& policies, TimePoint now) {
  std::optional<TimePoint> best;
  // Disabled policies count too: their slots pass in a Step that makes nothing, so that
  // enabling one later finds its last slot current instead of catching up.
  for (const Policy& policy : policies) {
    for (const Schedule& s : policy.schedules) {
      auto t = NextRun(s, now);
      if (t && (!best || *t < *best)) best = t;
    }
  }
  return best;
}

namespace {

// Creates each planned snapshot and, when that worked, applies retention to its volume.
std::vector<Action> RunRounds(const std::vector<Policy>& policies, std::vector<Action> creates,
                              const std::vector<VolumeInfo>& volumes, Executor& executor,
                              TimePoint now) {
  std::vector<Action> done;
  for (Action& create : creates) {
    Expected<std::string> id = executor.CreateSnapshot(create);
    if (!id) {
      create.error = id.error().message;
      done.push_back(std::move(create));
      continue;  // no retention in a round whose snapshot failed
    }
    create.snapshot_id = *id;
    done.push_back(create);
    auto policy = std::find_if(policies.begin(), policies.end(),
                               [&](const Policy& p) { return p.name == create.policy; });
    auto volume = std::find_if(volumes.begin(), volumes.end(),
                               [&](const VolumeInfo& v) { return v.id == create.volume_id; });
    if (policy == policies.end() || volume == volumes.end()) continue;
    for (Action& del : Retain(*policy, *volume, executor.Snapshots(create.volume_id), now)) {
      if (auto r = executor.DeleteSnapshot(del); !r) del.error = r.error().message;
      done.push_back(std::move(del));
    }
  }
  return done;
}

}  // namespace

std::vector<Action> Tick(const std::vector<Policy>& policies, SchedulerState& state,
                         const std::vector<VolumeInfo>& volumes, Executor& executor,
                         TimePoint now) {
  std::vector<std::string> warnings;
  std::vector<Action> creates = Step(policies, state, volumes, now, &warnings);
  for (const std::string& w : warnings) executor.Warn(w);
  executor.SaveState(state);
  return RunRounds(policies, std::move(creates), volumes, executor, now);
}

Expected<size_t> ChooseRunSchedule(const Policy& policy, const std::string& schedule) {
  if (schedule.empty()) {
    if (policy.schedules.size() == 1) return size_t{0};
    std::string names;
    for (const Schedule& s : policy.schedules) names += (names.empty() ? "" : ", ") + s.name;
    return MakeError("policy '" + policy.name + "' has " + std::to_string(policy.schedules.size()) +
                     " schedules; name the one to run (" + names + ")");
  }
  for (size_t i = 0; i < policy.schedules.size(); ++i) {
    if (policy.schedules[i].name == schedule) return i;
  }
  return MakeError("policy '" + policy.name + "' has no schedule '" + schedule + "'");
}

Expected<std::vector<Action>> RunNow(const Policy& policy, const std::string& schedule,
                                     const std::vector<VolumeInfo>& volumes, Executor& executor,
                                     TimePoint now) {
  if (!policy.enabled) return MakeError("policy '" + policy.name + "' is disabled");
  Expected<size_t> index = ChooseRunSchedule(policy, schedule);
  if (!index) return index.error();
  // The chosen schedule is due now; no state is read or written.
  std::vector<DueSchedule> due{{*index, now}};
  std::vector<Action> creates = CreatesFor(policy, due, now, volumes, now);
  return RunRounds({policy}, std::move(creates), volumes, executor, now);
}

}  // namespace blocksnap::policy
