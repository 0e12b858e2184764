// `blocksnapctl policy plan`: what the scheduler would create and delete over the next days,
// computed by running the scheduler's own Tick() on a simulated clock against an in-memory
// copy of today's volumes and snapshots. Pure: acts on nothing.
#pragma once

#include <string>
#include <vector>

#include "policy/inventory.h"
#include "policy/model.h"
#include "policy/scheduler.h"

namespace blocksnap::policy {

struct PlanInput {
  std::vector<Policy> policies;
  std::vector<VolumeInfo> volumes;
  std::vector<SnapshotInfo> snapshots;  // completed snapshots of those volumes
  SchedulerState state;                 // the persisted last slots
  TimePoint start{};                    // usually "now"
  int days = 7;                         // 1..366
};

struct Plan {
  std::vector<Action> actions;  // in the order the scheduler would take them
  SchedulerState final_state;
};

// Simulates: Tick at `start` (catch-up), then at every NextWake up to start + days. New
// snapshots are named "plan-1", "plan-2", ... in order of creation; creates always succeed.
// Deterministic: the same input gives the same plan.
Plan MakePlan(const PlanInput& input);

// The plan as text, one Action::ToString() per line.
std::string FormatPlan(const Plan& plan);

}  // namespace blocksnap::policy
