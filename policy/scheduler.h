// The scheduler's step: the ONE piece of code that decides what the live scheduler in
// blocksnapd does and what `blocksnapctl policy plan` predicts. Both call Tick() with the
// same inputs; the daemon's Executor acts on real volumes, the planner's on a simulation.
//
// The daemon's loop, in outline (clock injected, so tests can drive it):
//
//   SchedulerState state = LoadFromDb();            // last slots, by policy/schedule
//   for (;;) {
//     TimePoint now = clock.Now();
//     for (const Action& a : Tick(policies, state, ListVolumes(), executor, now)) Log(a);
//     auto wake = NextWake(policies, now);          // sleep until then, a reload or SIGHUP
//     WaitUntil(wake);
//   }
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "policy/inventory.h"
#include "policy/merge.h"
#include "policy/model.h"
#include "policy/result.h"

namespace blocksnap::policy {

// One thing the scheduler did (or, in a plan, would do).
struct Action {
  enum class Kind { kCreate, kDelete };
  Kind kind = Kind::kCreate;
  TimePoint at{};  // the step's "now"
  std::string policy;
  std::vector<std::string> schedules;  // kCreate: the merged due schedules; kDelete: owners
  std::string volume_id;
  std::string volume_name;
  std::string snapshot_id;  // kCreate: the new snapshot (once made); kDelete: the victim
  TimePoint slot{};         // kCreate: the slot it runs for (may be before `at` on catch-up)
  Tags tags;                // kCreate: every tag of the new snapshot
  std::string reason;       // kDelete: the rule ("beyond count 10")
  std::string error;        // set when the executor failed; nothing else was done then

  // One line for logs and `policy plan`:
  // "2024-03-31T03:00:00Z create db1 policy=db-nightly schedules=nightly snapshot=s1"
  // "2024-03-31T03:00:00Z delete s0 of db1 policy=db-nightly: beyond count 10"
  std::string ToString() const;
};

// Pure step, phase 1: advance `state` to `now` and return the snapshots to create (kCreate
// actions without snapshot_id), one per matching volume per policy with due schedules.
// Schedules seen for the first time get last_slot = now; disabled policies advance their
// state silently (they create and delete nothing, and do not catch up when re-enabled).
//
// A saved slot later than `now` means the clock was ahead when it was saved (or stepped
// back since). If it is the schedule's next slot anyway, it is kept: waiting for it skips
// nothing and that slot is not repeated. Otherwise waiting would skip slots (a clock that
// read 2031 at boot would stop the schedule until 2031), so the slot is reset to
// LatestRun(now): no slot up to now is repeated and the schedule resumes at its next slot.
// Each reset is described in `warnings` (if given), for the caller to log.
std::vector<Action> Step(const std::vector<Policy>& policies, SchedulerState& state,
                         const std::vector<VolumeInfo>& volumes, TimePoint now,
                         std::vector<std::string>* warnings = nullptr);

// Pure step, phase 2: after a round's snapshot of `volume_id` completed, the deletions that
// `policy`'s retention makes among `snapshots` (the volume's completed snapshots, the new
// one included). Never called for a round whose snapshot failed.
std::vector<Action> Retain(const Policy& policy, const VolumeInfo& volume,
                           const std::vector<SnapshotInfo>& snapshots, TimePoint now);

// The earliest instant after `now` at which some schedule has a slot, or nullopt. Disabled
// policies count: a Step at their slots moves their state on without making anything.
std::optional<TimePoint> NextWake(const std::vector<Policy>& policies, TimePoint now);

// What Tick needs from the world.
class Executor {
 public:
  virtual ~Executor() = default;
  // Persists the state right after Step(), before anything is created, so a crash between
  // creating and saving can miss a slot but never repeat one.
  virtual void SaveState(const SchedulerState& state) = 0;
  // Creates the snapshot and waits for it to complete; returns its id or an error.
  virtual Expected<std::string> CreateSnapshot(const Action& create) = 0;
  // The completed snapshots of a volume right now.
  virtual std::vector<SnapshotInfo> Snapshots(const std::string& volume_id) = 0;
  // Deletes a snapshot; an error is recorded in the action and the round goes on.
  virtual Expected<bool> DeleteSnapshot(const Action& del) = 0;
  // Something the caller should log (policy/ does not log): Step's warnings. Default: drop.
  virtual void Warn(const std::string& message) { (void)message; }
};

// One full scheduler tick at `now`: Step (its warnings go to Executor::Warn), SaveState, then for
// each create in order: create, and if it succeeded apply Retain to that volume and delete. Returns
// every action taken, in order, with snapshot ids and errors filled in.
std::vector<Action> Tick(const std::vector<Policy>& policies, SchedulerState& state,
                         const std::vector<VolumeInfo>& volumes, Executor& executor, TimePoint now);

// The schedule `policy run` acts on: the one named `schedule`, or with an empty name the
// policy's only schedule. Fails when there is no such schedule, or when the name is empty
// and the policy has several: a manual snapshot of all of them merged would count in every
// schedule's count and tiers and push out their own snapshots (three runs of a policy with
// `daily {count 7}` and `monthly {count 3}` would delete every monthly one).
Expected<size_t> ChooseRunSchedule(const Policy& policy, const std::string& schedule);

// `blocksnapctl policy run NAME [--schedule S]`: one round of `policy` now, as the scheduler
// would run it (same tags, same retention afterwards), for the schedule ChooseRunSchedule
// picks. It does not consume a slot: the state is not touched. Fails, acting on nothing, if
// the policy is disabled or ChooseRunSchedule fails.
Expected<std::vector<Action>> RunNow(const Policy& policy, const std::string& schedule,
                                     const std::vector<VolumeInfo>& volumes, Executor& executor,
                                     TimePoint now);

}  // namespace blocksnap::policy
