// Scheduler: blocksnapd's live policy scheduler (docs/policies.md, "Running policies").
//
// Holds the policies of the policy directory and the persisted SchedulerState. On the
// sd-event loop a CLOCK_REALTIME timer fires at policy::NextWake and hands a policy::Tick to
// the worker thread, which creates (and waits for) snapshots and applies retention through a
// SnapshotExecutor. The bus methods read the scheduler on the loop's thread; long work
// (RunPolicy, SetTime) runs on the worker and completes through a callback on the loop.
//
// With a test clock (blocksnapd --test-clock) no timer is armed: time moves only with
// SetTime, which runs the due tick and completes when all of it is done.
#pragma once

#include <systemd/sd-event.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "bus/bus_ptr.h"
#include "policy/parser.h"
#include "policy/planner.h"
#include "policy/scheduler.h"
#include "scheduler/clock.h"
#include "scheduler/main_queue.h"
#include "scheduler/worker.h"
#include "snapshot/snapshot_manager.h"
#include "store/db.h"
#include "util/status.h"
#include "util/unique_fd.h"
#include "volume/volume_manager.h"

namespace blocksnap::scheduler {

struct SchedulerOptions {
  std::string policy_dir;
  // Set: use a settable clock starting here (tests only).
  std::optional<policy::TimePoint> test_clock;
};

// The outcome of the latest run of a policy in this process.
struct RunResult {
  policy::TimePoint at{};
  int created = 0;
  int deleted = 0;
  int failed = 0;
  std::string first_error;
  // "ok: 2 created, 1 deleted", "failed: ..." .
  std::string Summary() const;
};

// What `policy list|show` shows of one policy.
struct PolicyStatus {
  policy::Policy policy;
  std::vector<std::string> volumes;                    // names of the volumes it targets now
  std::map<std::string, policy::TimePoint> last_slot;  // by schedule
  std::optional<RunResult> last_run;
  std::optional<policy::TimePoint> next_run;  // nullopt when disabled
};

using ActionsDone = std::function<void(Result<std::vector<policy::Action>>)>;

class Scheduler {
 public:
  // Loads the state and the policies (bad files are logged and skipped), runs the catch-up
  // tick and arms the timer. Everything passed in must outlive the scheduler, which must be
  // destroyed before `event`.
  static Result<std::unique_ptr<Scheduler>> Start(sd_event* event, SchedulerOptions options, Db& db,
                                                  VolumeManager& volumes,
                                                  SnapshotManager& snapshots);
  // Stops the timer, lets a running round finish, drops queued work.
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Re-reads `policy_dir`, keeping the state; bad files are logged and skipped. Queues a
  // tick (so new schedules start counting now) and re-arms the timer; `done` runs on the
  // loop once that tick is finished. Returns the load's diagnostics.
  std::vector<std::string> Reload(const std::string& policy_dir,
                                  std::function<void()> done = nullptr);
  // The "file:line:col: reason" lines of the latest load.
  std::vector<std::string> load_errors() const;
  size_t policy_count() const;

  std::vector<PolicyStatus> List() const;
  Result<PolicyStatus> Get(const std::string& name) const;
  // DescribePolicy at the scheduler's now.
  Result<std::string> Describe(const std::string& name) const;
  // What the next `days` would bring (policy::MakePlan from now); acts on nothing.
  Result<policy::Plan> Plan(int days) const;
  // One round of `name` now (policy::RunNow), on the worker; `done` runs on the loop.
  // Fails at once (NotFound, Busy for a disabled policy) without queueing anything.
  Status RunPolicy(const std::string& name, const std::string& schedule, ActionsDone done);

  // Runs `done` on the loop once the work queued so far (ticks, runs) has finished.
  void Barrier(std::function<void()> done);

  // Runs `work` on the worker, after the work queued so far, then what it returns on the loop.
  void OnWorker(std::function<std::function<void()>()> work);

  SnapshotManager& snapshots() const { return snapshots_; }
  VolumeManager& volumes() const { return volumes_; }

  bool has_test_clock() const { return clock_->settable(); }
  policy::TimePoint Now() const { return clock_->Now(); }
  // Test clock only: sets the time and runs the tick due then; `done` gets its actions.
  Status SetTime(policy::TimePoint t, ActionsDone done);

  Scheduler(sd_event* event, SchedulerOptions options, Db& db, VolumeManager& volumes,
            SnapshotManager& snapshots, std::unique_ptr<MainQueue> main);

 private:
  using PolicyList = std::shared_ptr<const std::vector<policy::Policy>>;

  void Install(policy::PolicySet set);
  // A reload that could not list the directory: the policies stay, the errors are reported.
  void KeepPolicies(std::vector<policy::Diagnostic> why);
  PolicyList policies() const;
  // Queues a tick at the clock's time when it runs; `done` (may be null) gets its actions.
  void QueueTick(ActionsDone done);
  // Runs `work` on the worker and hands its result to `done` (may be null) on the loop; an
  // exception becomes an Internal error there.
  void OnWorkerThen(std::function<Result<std::vector<policy::Action>>()> work, ActionsDone done);
  std::vector<policy::Action> RunTick();
  void Record(const std::vector<policy::Action>& actions, policy::TimePoint now);
  void ArmTimer();
  static int OnTimer(sd_event_source* s, uint64_t usec, void* userdata) noexcept;
  // Watches for the system clock being set (a timerfd with TFD_TIMER_CANCEL_ON_SET): the
  // CLOCK_REALTIME timer fires at an absolute time, so after NTP corrects a clock that was
  // years ahead it would not fire until then. On a change the scheduler ticks (a saved slot
  // now in the future is reset, policy::Step) and re-arms. Failing to watch is logged.
  void WatchClockChanges();
  bool RearmClockWatch();
  static int OnClockChanged(sd_event_source* s, int fd, uint32_t revents, void* userdata) noexcept;

  sd_event* event_;
  SchedulerOptions options_;
  Db& db_;
  VolumeManager& volumes_;
  SnapshotManager& snapshots_;
  std::unique_ptr<Clock> clock_;
  std::unique_ptr<MainQueue> main_;
  EventSourcePtr timer_;
  UniqueFd clock_watch_fd_;
  EventSourcePtr clock_watch_;  // after its fd: destroyed first

  mutable std::mutex mu_;  // guards the members below
  PolicyList policies_;
  std::vector<std::string> load_errors_;
  policy::SchedulerState state_;
  std::map<std::string, RunResult> last_runs_;

  // Last: destroyed first, so no task runs once the rest is gone.
  std::unique_ptr<Worker> worker_;
};

}  // namespace blocksnap::scheduler
