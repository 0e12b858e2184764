#include "scheduler/scheduler.h"

#include <spdlog/spdlog.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "policy/describe.h"
#include "policy/merge.h"
#include "scheduler/policy_loader.h"
#include "scheduler/snapshot_executor.h"
#include "scheduler/state_store.h"
#include "service/log_fields.h"

namespace blocksnap::scheduler {
namespace {

// The timer is armed this much late at most; slots are whole seconds.
constexpr uint64_t kTimerAccuracyUsec = 100'000;

void LogAction(const policy::Action& a) {
  LogFields fields{
      {kLogPolicy, a.policy}, {kLogVolume, a.volume_name}, {kLogSnapshot, a.snapshot_id}};
  if (a.error.empty())
    spdlog::info("policy: {}", a.ToString());
  else
    spdlog::warn("policy: {}", a.ToString());
}

}  // namespace

std::string RunResult::Summary() const {
  std::string counts =
      std::to_string(created) + " created, " + std::to_string(deleted) + " deleted";
  if (failed == 0) return "ok: " + counts;
  return "failed: " + counts + ", " + std::to_string(failed) + " failed (" + first_error + ")";
}

Scheduler::Scheduler(sd_event* event, SchedulerOptions options, Db& db, VolumeManager& volumes,
                     SnapshotManager& snapshots, std::unique_ptr<MainQueue> main)
    : event_(event),
      options_(std::move(options)),
      db_(db),
      volumes_(volumes),
      snapshots_(snapshots),
      clock_(options_.test_clock ? MakeTestClock(*options_.test_clock) : MakeSystemClock()),
      main_(std::move(main)),
      policies_(std::make_shared<std::vector<policy::Policy>>()),
      worker_(std::make_unique<Worker>()) {}

Result<std::unique_ptr<Scheduler>> Scheduler::Start(sd_event* event, SchedulerOptions options,
                                                    Db& db, VolumeManager& volumes,
                                                    SnapshotManager& snapshots) {
  BS_ASSIGN_OR_RETURN(policy::SchedulerState state, LoadState(db));
  BS_ASSIGN_OR_RETURN(std::unique_ptr<MainQueue> main, MainQueue::Create(event));
  auto s = std::make_unique<Scheduler>(event, options, db, volumes, snapshots, std::move(main));
  s->state_ = std::move(state);
  if (s->has_test_clock())
    spdlog::warn("scheduler: TEST CLOCK at {}: time moves only by Testing.SetTime",
                 policy::FormatTimestamp(s->Now()));
  s->WatchClockChanges();
  s->Reload(options.policy_dir);
  return s;
}

Scheduler::~Scheduler() {
  timer_.reset();
  clock_watch_.reset();
  worker_.reset();
}

void Scheduler::WatchClockChanges() {
  if (clock_->settable()) return;
  clock_watch_fd_.reset(timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!clock_watch_fd_ || !RearmClockWatch()) {
    spdlog::warn(
        "scheduler: cannot watch for clock changes: {}; after the clock is set, "
        "schedules resume at the next reload, ignoring",
        strerror(errno));
    clock_watch_fd_.reset();
    return;
  }
  sd_event_source* raw = nullptr;
  int r = sd_event_add_io(event_, &raw, clock_watch_fd_.get(), EPOLLIN, OnClockChanged, this);
  if (r < 0) {
    spdlog::warn("scheduler: cannot watch for clock changes: {}, ignoring", strerror(-r));
    clock_watch_fd_.reset();
    return;
  }
  clock_watch_.reset(raw);
}

bool Scheduler::RearmClockWatch() {
  // Never expires; a clock change cancels it, which makes the fd readable (ECANCELED).
  itimerspec never{};
  never.it_value.tv_sec = std::numeric_limits<time_t>::max();
  return timerfd_settime(clock_watch_fd_.get(), TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &never,
                         nullptr) == 0;
}

int Scheduler::OnClockChanged(sd_event_source*, int fd, uint32_t, void* userdata) noexcept {
  auto* s = static_cast<Scheduler*>(userdata);
  uint64_t expirations = 0;
  (void)!read(fd, &expirations, sizeof expirations);  // ECANCELED: the clock was set
  try {
    if (!s->RearmClockWatch())
      spdlog::warn("scheduler: cannot re-arm the clock watch: {}, ignoring", strerror(errno));
    spdlog::info("scheduler: the system clock was set (now {}); re-checking schedules",
                 policy::FormatTimestamp(s->Now()));
    s->QueueTick(nullptr);
    s->ArmTimer();
  } catch (const std::exception& e) {
    spdlog::error("scheduler: {}, ignoring", e.what());
  }
  return 0;
}

void Scheduler::Install(policy::PolicySet set) {
  std::vector<std::string> errors;
  for (const policy::Diagnostic& d : set.errors) {
    errors.push_back(d.ToString());
    spdlog::error("policy file skipped: {}", d.ToString());
  }
  for (const policy::Policy& p : set.policies) {
    LogFields fields{{kLogPolicy, p.name}};
    spdlog::info("policy {} loaded from {} ({}, {} schedule(s))", p.name, p.where.file,
                 p.enabled ? "enabled" : "disabled", p.schedules.size());
  }
  std::lock_guard lock(mu_);
  policies_ = std::make_shared<const std::vector<policy::Policy>>(std::move(set.policies));
  load_errors_ = std::move(errors);
}

void Scheduler::KeepPolicies(std::vector<policy::Diagnostic> why) {
  std::vector<std::string> errors;
  const std::string kept =
      "; the " + std::to_string(policy_count()) + " policies loaded before keep running";
  for (const policy::Diagnostic& d : why) {
    errors.push_back(d.ToString() + kept);
    spdlog::error("policy reload failed: {}", errors.back());
  }
  std::lock_guard lock(mu_);
  load_errors_ = std::move(errors);
}

std::vector<std::string> Scheduler::Reload(const std::string& policy_dir,
                                           std::function<void()> done) {
  options_.policy_dir = policy_dir;
  PolicyDirLoad load = LoadPolicyDir(policy_dir);
  if (!load.listed && policies()) {
    // The directory exists but cannot be listed right now (EACCES, EIO, a symlink loop).
    // That says nothing about the policies in it, so the installed ones keep running.
    KeepPolicies(std::move(load.set.errors));
  } else {
    Install(std::move(load.set));
  }
  spdlog::info("scheduler: {} policies loaded from {}", policy_count(), policy_dir);
  QueueTick([done = std::move(done)](Result<std::vector<policy::Action>>) {
    if (done) done();
  });
  ArmTimer();
  return load_errors();
}

std::vector<std::string> Scheduler::load_errors() const {
  std::lock_guard lock(mu_);
  return load_errors_;
}

size_t Scheduler::policy_count() const {
  return policies()->size();
}

Scheduler::PolicyList Scheduler::policies() const {
  std::lock_guard lock(mu_);
  return policies_;
}

void Scheduler::OnWorkerThen(std::function<Result<std::vector<policy::Action>>()> work,
                             ActionsDone done) {
  OnWorker([work = std::move(work), done = std::move(done)]() mutable -> std::function<void()> {
    Result<std::vector<policy::Action>> result = Internal("internal error");
    try {
      result = work();
    } catch (const std::exception& e) {
      spdlog::error("scheduler: {}", e.what());
      result = Internal(std::string("internal error: ") + e.what());
    }
    // `done` often holds a PendingReply: it runs, and is released, on the loop, whatever
    // happened, so that a D-Bus caller always gets its answer.
    return [done = std::move(done), result = std::move(result)]() mutable {
      if (done) done(std::move(result));
      done = nullptr;
    };
  });
}

void Scheduler::QueueTick(ActionsDone done) {
  OnWorkerThen([this]() -> Result<std::vector<policy::Action>> { return RunTick(); },
               std::move(done));
}

std::vector<policy::Action> Scheduler::RunTick() {
  const policy::TimePoint now = clock_->Now();
  PolicyList list = policies();
  policy::SchedulerState state;
  {
    std::lock_guard lock(mu_);
    state = state_;
  }
  SnapshotExecutor executor(db_, snapshots_, volumes_, clock_->settable(),
                            [this](const policy::SchedulerState& saved) {
                              std::lock_guard lock(mu_);
                              state_ = saved;
                            });
  std::vector<policy::Action> actions =
      policy::Tick(*list, state, VolumeInfos(volumes_), executor, now);
  Record(actions, now);
  return actions;
}

void Scheduler::Record(const std::vector<policy::Action>& actions, policy::TimePoint now) {
  std::map<std::string, RunResult> runs;
  for (const policy::Action& a : actions) {
    LogAction(a);
    RunResult& r = runs[a.policy];
    r.at = now;
    if (!a.error.empty()) {
      if (r.failed++ == 0) r.first_error = a.error;
    } else if (a.kind == policy::Action::Kind::kCreate) {
      ++r.created;
    } else {
      ++r.deleted;
    }
  }
  for (const auto& [name, r] : runs) {
    LogFields fields{{kLogPolicy, name}};
    spdlog::info("policy {} ran at {}: {}", name, policy::FormatTimestamp(now), r.Summary());
  }
  std::lock_guard lock(mu_);
  for (auto& [name, r] : runs) last_runs_[name] = std::move(r);
}

void Scheduler::ArmTimer() {
  if (clock_->settable()) return;
  std::optional<policy::TimePoint> next = policy::NextWake(*policies(), clock_->Now());
  if (!next) {
    if (timer_) sd_event_source_set_enabled(timer_.get(), SD_EVENT_OFF);
    return;
  }
  const uint64_t usec = static_cast<uint64_t>(next->time_since_epoch().count()) * 1'000'000;
  if (!timer_) {
    sd_event_source* raw = nullptr;
    int r =
        sd_event_add_time(event_, &raw, CLOCK_REALTIME, usec, kTimerAccuracyUsec, OnTimer, this);
    if (r < 0) {
      spdlog::error("scheduler: cannot arm its timer: {}; policies will not run", strerror(-r));
      return;
    }
    timer_.reset(raw);
  } else {
    sd_event_source_set_time(timer_.get(), usec);
    sd_event_source_set_enabled(timer_.get(), SD_EVENT_ONESHOT);
  }
  spdlog::debug("scheduler: next wake at {}", policy::FormatTimestamp(*next));
}

int Scheduler::OnTimer(sd_event_source*, uint64_t, void* userdata) noexcept {
  auto* s = static_cast<Scheduler*>(userdata);
  try {
    s->QueueTick(nullptr);
    s->ArmTimer();
  } catch (const std::exception& e) {
    spdlog::error("scheduler: {}, ignoring", e.what());
  }
  return 0;
}

std::vector<PolicyStatus> Scheduler::List() const {
  PolicyList list = policies();
  std::vector<policy::VolumeInfo> volumes = VolumeInfos(volumes_);
  const policy::TimePoint now = clock_->Now();
  std::lock_guard lock(mu_);
  std::vector<PolicyStatus> out;
  for (const policy::Policy& p : *list) {
    PolicyStatus st;
    st.policy = p;
    for (const policy::VolumeInfo& v : volumes)
      if (policy::MatchesTarget(p, v.tags)) st.volumes.push_back(v.name);
    for (const policy::Schedule& s : p.schedules) {
      auto it = state_.last_slot.find({p.name, s.name});
      if (it != state_.last_slot.end()) st.last_slot[s.name] = it->second;
    }
    if (auto it = last_runs_.find(p.name); it != last_runs_.end()) st.last_run = it->second;
    if (p.enabled) st.next_run = policy::NextWake({p}, now);
    out.push_back(std::move(st));
  }
  return out;
}

Result<PolicyStatus> Scheduler::Get(const std::string& name) const {
  for (PolicyStatus& st : List())
    if (st.policy.name == name) return std::move(st);
  return NotFound("no policy '" + name + "'");
}

Result<std::string> Scheduler::Describe(const std::string& name) const {
  BS_ASSIGN_OR_RETURN(PolicyStatus st, Get(name));
  return policy::DescribePolicy(st.policy, clock_->Now());
}

Result<policy::Plan> Scheduler::Plan(int days) const {
  if (days < 1 || days > 366) return InvalidArgument("days must be 1..366");
  policy::PlanInput in;
  in.policies = *policies();
  in.volumes = VolumeInfos(volumes_);
  BS_ASSIGN_OR_RETURN(std::vector<SnapshotRecord> records, snapshots_.List());
  in.snapshots = SnapshotInfos(records, clock_->settable());
  {
    std::lock_guard lock(mu_);
    in.state = state_;
  }
  in.start = clock_->Now();
  in.days = days;
  return policy::MakePlan(in);
}

Status Scheduler::RunPolicy(const std::string& name, const std::string& schedule,
                            ActionsDone done) {
  PolicyList list = policies();
  auto it = std::find_if(list->begin(), list->end(),
                         [&](const policy::Policy& p) { return p.name == name; });
  if (it == list->end()) return NotFound("no policy '" + name + "'");
  if (!it->enabled) return Busy("policy '" + name + "' is disabled");
  if (policy::Expected<size_t> chosen = policy::ChooseRunSchedule(*it, schedule); !chosen) {
    // No name for a policy with several schedules is a usage error; a wrong name is not found.
    if (schedule.empty()) return InvalidArgument(chosen.error().message);
    return NotFound(chosen.error().message);
  }
  OnWorkerThen(
      [this, policy = *it, schedule]() -> Result<std::vector<policy::Action>> {
        const policy::TimePoint now = clock_->Now();
        SnapshotExecutor executor(db_, snapshots_, volumes_, clock_->settable(), nullptr);
        auto actions = policy::RunNow(policy, schedule, VolumeInfos(volumes_), executor, now);
        if (!actions) return Busy(actions.error().message);
        spdlog::info("policy {} run by request", policy.name);
        Record(*actions, now);
        return std::move(*actions);
      },
      std::move(done));
  return Status::Ok();
}

void Scheduler::Barrier(std::function<void()> done) {
  worker_->Post([this, done = std::move(done)]() mutable { main_->Post(std::move(done)); });
}

void Scheduler::OnWorker(std::function<std::function<void()>()> work) {
  worker_->Post([this, work = std::move(work)]() mutable {
    std::function<void()> then;
    try {
      then = work();
    } catch (const std::exception& e) {
      spdlog::error("scheduler: {}", e.what());
      // Its captures (a PendingReply, through it an sd-bus connection) go on the loop.
      main_->Post([work = std::move(work)]() mutable { work = nullptr; });
      return;
    }
    // Drop the work's captures before `then` can run: what they share with `then` (a
    // PendingReply, and through it an sd-bus connection) must be released on the loop.
    work = nullptr;
    main_->Post(std::move(then));
  });
}

Status Scheduler::SetTime(policy::TimePoint t, ActionsDone done) {
  if (!clock_->settable()) return Busy("the scheduler does not run on a test clock");
  OnWorkerThen(
      [this, t]() -> Result<std::vector<policy::Action>> {
        clock_->Set(t);
        return RunTick();
      },
      std::move(done));
  return Status::Ok();
}

}  // namespace blocksnap::scheduler
