#include "policy/planner.h"

#include <algorithm>

namespace blocksnap::policy {

namespace {

// An Executor over an in-memory snapshot list: the simulated world of a plan.
class SimulatedExecutor : public Executor {
 public:
  SimulatedExecutor(std::vector<SnapshotInfo> snapshots, TimePoint* clock)
      : snapshots_(std::move(snapshots)), clock_(clock) {
    for (const SnapshotInfo& s : snapshots_) sequence_ = std::max(sequence_, s.sequence);
  }

  void SaveState(const SchedulerState&) override {}

  Expected<std::string> CreateSnapshot(const Action& create) override {
    std::string id = "plan-" + std::to_string(++created_);
    snapshots_.push_back({id, create.volume_id, *clock_, create.tags, false, ++sequence_});
    return id;
  }

  std::vector<SnapshotInfo> Snapshots(const std::string& volume_id) override {
    std::vector<SnapshotInfo> out;
    for (const SnapshotInfo& s : snapshots_) {
      if (s.volume_id == volume_id) out.push_back(s);
    }
    return out;
  }

  Expected<bool> DeleteSnapshot(const Action& del) override {
    auto it = std::find_if(snapshots_.begin(), snapshots_.end(),
                           [&](const SnapshotInfo& s) { return s.id == del.snapshot_id; });
    if (it == snapshots_.end()) return MakeError("no snapshot '" + del.snapshot_id + "'");
    snapshots_.erase(it);
    return true;
  }

 private:
  std::vector<SnapshotInfo> snapshots_;
  TimePoint* clock_;
  int created_ = 0;
  uint64_t sequence_ = 0;  // planned snapshots come after every existing one
};

}  // namespace

Plan MakePlan(const PlanInput& input) {
  Plan plan;
  plan.final_state = input.state;
  TimePoint now = input.start;
  SimulatedExecutor executor(input.snapshots, &now);
  const TimePoint end = input.start + std::chrono::days(std::clamp(input.days, 0, 366));
  while (true) {
    for (Action& a : Tick(input.policies, plan.final_state, input.volumes, executor, now)) {
      plan.actions.push_back(std::move(a));
    }
    std::optional<TimePoint> next = NextWake(input.policies, now);
    if (!next || *next > end) break;
    now = *next;
  }
  return plan;
}

std::string FormatPlan(const Plan& plan) {
  std::string out;
  for (const Action& a : plan.actions) out += a.ToString() + "\n";
  return out;
}

}  // namespace blocksnap::policy
