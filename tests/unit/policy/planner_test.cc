// The scheduler step and the planner: deterministic plans, catch-up once, disabled
// policies, target matching, retention of only the policy's own snapshots, and a plan that
// equals what a live scheduler ticking on its own clock does.
#include <gtest/gtest.h>

#include <algorithm>

#include "policy/parser.h"
#include "policy/planner.h"
#include "tests/unit/policy/test_util.h"

namespace blocksnap::policy {
namespace {

using namespace std::chrono;
using testing::S;
using testing::T;

std::vector<Policy> Policies(const std::string& yaml) {
  ParsedFile f = ParsePolicyFile("t.yaml", yaml, testing::Zones());
  EXPECT_TRUE(f.ok()) << (f.ok() ? "" : f.errors[0].ToString());
  return f.policies;
}

// The issue's example, with count 3 to see deletions quickly.
constexpr const char* kNightly = R"(name: db-nightly
target:
  tags: {backup: nightly}
schedules:
  - name: nightly
    create: {every: 24h, times: ["03:00"], timezone: UTC}
    retain: {age: 5d, count: 3}
    tags: {kind: nightly}
    copy_tags: true
)";

std::vector<VolumeInfo> Volumes() {
  return {{"v1", "db1", {{"backup", "nightly"}}},
          {"v2", "web1", {{"backup", "never"}}},
          {"v3", "db2", {{"backup", "nightly"}, {"owner", "ann"}}}};
}

SnapshotInfo Owned(const std::string& id, const std::string& vol, const std::string& created) {
  return {id,
          vol,
          T(created),
          {{"blocksnap:policy", "db-nightly"}, {"blocksnap:schedule", "nightly"}},
          false};
}

PlanInput Input() {
  PlanInput in;
  in.policies = Policies(kNightly);
  in.volumes = Volumes();
  in.snapshots = {
      Owned("old1", "v1", "2024-05-07T03:00:00Z"),
      Owned("old2", "v1", "2024-05-08T03:00:00Z"),
      Owned("old3", "v1", "2024-05-09T03:00:00Z"),
      {"manual", "v1", T("2024-05-01T00:00:00Z"), {{"note", "by hand"}}, false},
      {"foreign",
       "v1",
       T("2024-05-01T00:00:00Z"),
       {{"blocksnap:policy", "other"}, {"blocksnap:schedule", "nightly"}},
       false},
  };
  in.state.last_slot[{"db-nightly", "nightly"}] = T("2024-05-09T03:00:00Z");
  in.start = T("2024-05-09T12:00:00Z");
  in.days = 2;
  return in;
}

TEST(Planner, PlansCreatesAndDeletes) {
  Plan plan = MakePlan(Input());
  EXPECT_EQ(
      FormatPlan(plan),
      "2024-05-10T03:00:00Z create db1 policy=db-nightly schedules=nightly snapshot=plan-1\n"
      "2024-05-10T03:00:00Z delete old1 of db1 policy=db-nightly: beyond count 3\n"
      "2024-05-10T03:00:00Z create db2 policy=db-nightly schedules=nightly snapshot=plan-2\n"
      "2024-05-11T03:00:00Z create db1 policy=db-nightly schedules=nightly snapshot=plan-3\n"
      "2024-05-11T03:00:00Z delete old2 of db1 policy=db-nightly: beyond count 3\n"
      "2024-05-11T03:00:00Z create db2 policy=db-nightly schedules=nightly snapshot=plan-4\n");
  EXPECT_EQ(S(plan.final_state.last_slot.at({"db-nightly", "nightly"})), "2024-05-11T03:00:00Z");
  const Action& create = plan.actions[2];
  EXPECT_EQ(create.tags, (Tags{{"backup", "nightly"},
                               {"owner", "ann"},
                               {"kind", "nightly"},
                               {"blocksnap:policy", "db-nightly"},
                               {"blocksnap:schedule", "nightly"},
                               {"blocksnap:slot", "2024-05-10T03:00:00Z"}}));
}

TEST(Planner, Deterministic) {
  PlanInput in = Input();
  in.days = 30;
  std::string first = FormatPlan(MakePlan(in));
  EXPECT_EQ(first, FormatPlan(MakePlan(in)));
  // 30 days x 2 volumes of creates; db1's 3 old ones and all but 3 new per volume go.
  Plan plan = MakePlan(in);
  int creates = 0, deletes = 0;
  for (const Action& a : plan.actions) (a.kind == Action::Kind::kCreate ? creates : deletes)++;
  EXPECT_EQ(creates, 60);
  EXPECT_EQ(deletes, 3 + 27 + 27);
  for (const Action& a : plan.actions) {
    EXPECT_NE(a.snapshot_id, "manual");
    EXPECT_NE(a.snapshot_id, "foreign");
  }
}

TEST(Planner, CatchUpAfterDowntimeCreatesOneSnapshot) {
  PlanInput in = Input();
  in.snapshots.clear();
  in.state.last_slot[{"db-nightly", "nightly"}] = T("2024-05-01T03:00:00Z");  // 8 slots missed
  in.start = T("2024-05-09T12:00:00Z");
  in.days = 0;
  Plan plan = MakePlan(in);
  ASSERT_EQ(plan.actions.size(), 2u);  // db1 and db2, once each
  EXPECT_EQ(plan.actions[0].ToString(),
            "2024-05-09T12:00:00Z create db1 policy=db-nightly schedules=nightly "
            "slot=2024-05-09T03:00:00Z snapshot=plan-1");
  // Restarting at the same instant with the saved state does nothing more.
  in.state = plan.final_state;
  EXPECT_TRUE(MakePlan(in).actions.empty());
}

TEST(Planner, NewScheduleStartsFromNow) {
  PlanInput in = Input();
  in.state = {};
  in.start = T("2024-05-10T03:00:00Z");  // exactly a slot: it is not "missed"
  in.days = 1;
  Plan plan = MakePlan(in);
  ASSERT_FALSE(plan.actions.empty());
  EXPECT_EQ(S(plan.actions[0].at), "2024-05-11T03:00:00Z");
}

TEST(Planner, DisabledPolicyDoesNothing) {
  std::string yaml = kNightly;
  yaml.insert(yaml.find("target:"), "enabled: false\n");
  PlanInput in = Input();
  in.policies = Policies(yaml);
  in.days = 10;
  Plan plan = MakePlan(in);
  EXPECT_TRUE(plan.actions.empty());
}

TEST(Planner, CoincidentSchedulesMakeOneSnapshot) {
  PlanInput in;
  in.policies = Policies(R"(name: p
target: {tags: {backup: nightly}}
schedules:
  - {name: daily, create: {cron: "0 0 * * *"}, retain: {count: 2}}
  - {name: weekly, create: {cron: "0 0 * * mon"}, retain: {count: 2}}
)");
  in.volumes = {Volumes()[0]};
  in.start = T("2024-04-01T00:00:00Z");  // a Monday; state starts now
  in.days = 14;
  Plan plan = MakePlan(in);
  std::vector<std::string> lines;
  for (const Action& a : plan.actions) {
    if (a.kind == Action::Kind::kCreate && a.schedules.size() > 1) lines.push_back(a.ToString());
  }
  EXPECT_EQ(lines, (std::vector<std::string>{
                       "2024-04-08T00:00:00Z create db1 policy=p schedules=daily,weekly "
                       "snapshot=plan-7",
                       "2024-04-15T00:00:00Z create db1 policy=p schedules=daily,weekly "
                       "snapshot=plan-14"}));
  // The merged snapshot of 04-08 survives daily's count (2) because weekly keeps it.
  for (const Action& a : plan.actions) {
    if (a.kind == Action::Kind::kDelete) {
      EXPECT_NE(a.snapshot_id, "plan-7");
    }
  }
}

// A live scheduler: wakes every minute on its own (simulated) clock, acts through an
// executor that records what it did.
class RecordingExecutor : public Executor {
 public:
  explicit RecordingExecutor(std::vector<SnapshotInfo> snaps) : snaps_(std::move(snaps)) {}
  TimePoint now{};
  int saves = 0;
  void SaveState(const SchedulerState&) override { ++saves; }
  Expected<std::string> CreateSnapshot(const Action& c) override {
    std::string id = "plan-" + std::to_string(++n_);
    uint64_t sequence = 0;  // after every existing snapshot, as the daemon's ids count up
    for (const SnapshotInfo& s : snaps_) sequence = std::max(sequence, s.sequence);
    snaps_.push_back({id, c.volume_id, now, c.tags, false, sequence + 1});
    return id;
  }
  std::vector<SnapshotInfo> Snapshots(const std::string& volume_id) override {
    std::vector<SnapshotInfo> out;
    for (const auto& s : snaps_) {
      if (s.volume_id == volume_id) out.push_back(s);
    }
    return out;
  }
  Expected<bool> DeleteSnapshot(const Action& d) override {
    std::erase_if(snaps_, [&](const SnapshotInfo& s) { return s.id == d.snapshot_id; });
    return true;
  }

 private:
  std::vector<SnapshotInfo> snaps_;
  int n_ = 0;
};

TEST(Planner, PlanEqualsWhatTheSchedulerDoes) {
  PlanInput in = Input();
  in.policies = Policies(std::string(kNightly) + R"(  - name: quarter
    create: {cron: "*/15 9-10 * * *", timezone: Europe/Berlin}
    retain: {hourly: 2, daily: 1}
)");
  in.days = 3;
  Plan plan = MakePlan(in);
  RecordingExecutor live(in.snapshots);
  SchedulerState state = in.state;
  std::vector<Action> done;
  for (TimePoint t = in.start; t <= in.start + days(in.days); t += minutes(1)) {
    live.now = t;
    for (Action& a : Tick(in.policies, state, in.volumes, live, t)) done.push_back(std::move(a));
  }
  std::string live_text;
  for (const Action& a : done) live_text += a.ToString() + "\n";
  EXPECT_EQ(FormatPlan(plan), live_text);
  EXPECT_GT(plan.actions.size(), 40u);
  EXPECT_EQ(plan.final_state.last_slot, state.last_slot);
}

TEST(Planner, FailedCreateSkipsRetention) {
  class Failing : public RecordingExecutor {
   public:
    using RecordingExecutor::RecordingExecutor;
    Expected<std::string> CreateSnapshot(const Action&) override {
      return MakeError("volume busy");
    }
  };
  PlanInput in = Input();
  Failing exec(in.snapshots);
  SchedulerState state = in.state;
  auto actions = Tick(in.policies, state, in.volumes, exec, T("2024-05-10T03:00:00Z"));
  ASSERT_EQ(actions.size(), 2u);
  EXPECT_EQ(actions[0].ToString(),
            "2024-05-10T03:00:00Z create db1 policy=db-nightly schedules=nightly FAILED: volume "
            "busy");
  EXPECT_EQ(exec.saves, 1);
  // The slot is consumed: a retry waits for the next slot rather than duplicating one.
  EXPECT_TRUE(Tick(in.policies, state, in.volumes, exec, T("2024-05-10T03:01:00Z")).empty());
}

TEST(Planner, RunNowActsOnceWithoutTouchingState) {
  PlanInput in = Input();
  RecordingExecutor exec(in.snapshots);
  exec.now = T("2024-05-09T13:00:00Z");
  auto done = RunNow(in.policies[0], "", in.volumes, exec, exec.now);
  ASSERT_TRUE(done.ok());
  ASSERT_EQ(done->size(), 3u);
  EXPECT_EQ((*done)[0].ToString(),
            "2024-05-09T13:00:00Z create db1 policy=db-nightly schedules=nightly snapshot=plan-1");
  EXPECT_EQ((*done)[1].ToString(),
            "2024-05-09T13:00:00Z delete old1 of db1 policy=db-nightly: beyond count 3");
  EXPECT_EQ(exec.saves, 0);
  EXPECT_EQ(RunNow(in.policies[0], "weekly", in.volumes, exec, exec.now).error().message,
            "policy 'db-nightly' has no schedule 'weekly'");
  Policy off = in.policies[0];
  off.enabled = false;
  EXPECT_EQ(RunNow(off, "", in.volumes, exec, exec.now).error().message,
            "policy 'db-nightly' is disabled");
}

// A wall clock stepped back a week: the snapshot just taken carries the oldest creation time,
// yet it is the newest, and count retention deletes the oldest by creation order instead.
TEST(Planner, ClockSteppedBackKeepsTheSnapshotJustTaken) {
  PlanInput in = Input();
  uint64_t sequence = 0;
  for (SnapshotInfo& s : in.snapshots) s.sequence = ++sequence;
  RecordingExecutor exec(in.snapshots);
  exec.now = T("2024-05-01T12:00:00Z");
  auto done = RunNow(in.policies[0], "", in.volumes, exec, exec.now);
  ASSERT_TRUE(done.ok());
  ASSERT_EQ(done->size(), 3u);
  EXPECT_EQ((*done)[0].ToString(),
            "2024-05-01T12:00:00Z create db1 policy=db-nightly schedules=nightly snapshot=plan-1");
  EXPECT_EQ((*done)[1].ToString(),
            "2024-05-01T12:00:00Z delete old1 of db1 policy=db-nightly: beyond count 3");
  std::vector<std::string> left;
  for (const SnapshotInfo& s : exec.Snapshots("v1")) left.push_back(s.id);
  EXPECT_EQ(left, (std::vector<std::string>{"old2", "old3", "manual", "foreign", "plan-1"}));
}

TEST(Planner, ParsePolicyFilesSortsByName) {
  std::string one = kNightly;
  PolicySet set = ParsePolicyFiles({{"b.yaml", one}, {"a.yaml", one}}, testing::Zones());
  ASSERT_EQ(set.policies.size(), 1u);
  EXPECT_EQ(set.policies[0].where.file, "a.yaml");
  ASSERT_EQ(set.errors.size(), 1u);
  EXPECT_EQ(set.errors[0].ToString(),
            "b.yaml:1:7: duplicate policy name 'db-nightly' (first defined at a.yaml:1:7)");
}

TEST(Planner, ReEnabledPolicyDoesNotCatchUp) {
  std::vector<Policy> policies = Policies(kNightly);
  policies[0].enabled = false;
  SchedulerState state;
  state.last_slot[{"db-nightly", "nightly"}] = T("2024-05-01T03:00:00Z");
  // Disabled across several slots: its state moves on silently.
  EXPECT_TRUE(Step(policies, state, Volumes(), T("2024-05-05T12:00:00Z")).empty());
  EXPECT_EQ(S(state.last_slot.at({"db-nightly", "nightly"})), "2024-05-05T03:00:00Z");
  policies[0].enabled = true;
  EXPECT_TRUE(Step(policies, state, Volumes(), T("2024-05-05T12:00:01Z")).empty());
  EXPECT_EQ(Step(policies, state, Volumes(), T("2024-05-06T03:00:00Z")).size(), 2u);
}

// The daemon only steps when NextWake says so. A disabled hourly policy beside a nightly
// one: its slots must still wake the loop (doing nothing), or enabling it at 15:30 would
// find its last slot at 03:00 and catch up at once, which docs/policies.md rules out.
TEST(Planner, EnablingAPolicyBetweenTicksDoesNotCatchUp) {
  std::vector<Policy> policies = Policies(R"(policies:
  - name: nightly
    target: {tags: {backup: nightly}}
    schedules: [{name: s, create: {every: 24h, times: ["03:00"], timezone: UTC}, retain: {count: 3}}]
  - name: hourly
    enabled: false
    target: {tags: {backup: nightly}}
    schedules: [{name: s, create: {every: 1h}, retain: {count: 3}}]
)");
  SchedulerState state;
  TimePoint now = T("2024-05-05T03:00:00Z");
  Step(policies, state, Volumes(), now);
  const TimePoint enable_at = T("2024-05-05T15:30:00Z");
  for (auto next = NextWake(policies, now); next && *next < enable_at;
       next = NextWake(policies, now)) {
    now = *next;
    for (const Action& a : Step(policies, state, Volumes(), now)) EXPECT_NE(a.policy, "hourly");
  }
  policies[1].enabled = true;  // `policy reload` ticks at once
  EXPECT_TRUE(Step(policies, state, Volumes(), enable_at).empty());
  EXPECT_EQ(Step(policies, state, Volumes(), T("2024-05-05T16:00:00Z")).size(), 2u);
}

TEST(Planner, MatchAllAndSeveralPolicies) {
  std::vector<Policy> policies = Policies(R"(policies:
  - name: any
    target: {tags: {backup: nightly, owner: ann}}
    schedules: [{name: s, create: {every: 1h}, retain: {count: 1}}]
  - name: all
    target: {tags: {backup: nightly, owner: ann}, match: all}
    schedules: [{name: s, create: {every: 1h}, retain: {count: 1}}]
)");
  SchedulerState state;
  EXPECT_TRUE(Step(policies, state, Volumes(), T("2024-05-05T12:30:00Z")).empty());
  std::vector<std::string> made;
  for (const Action& a : Step(policies, state, Volumes(), T("2024-05-05T13:00:00Z"))) {
    made.push_back(a.policy + ":" + a.volume_name);
  }
  // db1 has only backup=nightly; db2 has both tags; web1 neither.
  EXPECT_EQ(made, (std::vector<std::string>{"any:db1", "any:db2", "all:db2"}));
}

TEST(Planner, LockedSnapshotsSurviveThePlan) {
  PlanInput in = Input();
  in.snapshots[0].locked = true;  // old1
  in.days = 10;
  for (const Action& a : MakePlan(in).actions) EXPECT_NE(a.snapshot_id, "old1");
}

// The clock read 2031 at boot: the catch-up round saved a 2031 slot. After the clock is
// corrected, waiting for a slot after 2031 would stop the schedule silently for years. The
// saved slot is reset to the latest slot up to now (with a warning), so the schedule
// resumes at its next slot and no slot up to now is repeated.
TEST(Planner, ForwardClockJumpDoesNotStopTheSchedule) {
  class Warned : public RecordingExecutor {
   public:
    using RecordingExecutor::RecordingExecutor;
    void Warn(const std::string& m) override { warnings.push_back(m); }
    std::vector<std::string> warnings;
  };
  PlanInput in = Input();
  Warned exec(in.snapshots);
  SchedulerState state = in.state;  // last slot 2024-05-09T03:00
  exec.now = T("2031-01-01T12:00:00Z");
  auto wrong = Tick(in.policies, state, in.volumes, exec, exec.now);
  ASSERT_FALSE(wrong.empty());
  EXPECT_EQ(S(wrong[0].slot), "2031-01-01T03:00:00Z");
  EXPECT_EQ(S(state.last_slot[{"db-nightly", "nightly"}]), "2031-01-01T03:00:00Z");
  EXPECT_TRUE(exec.warnings.empty());

  // NTP corrects the clock: the next tick resets the slot and warns; nothing is due now.
  exec.now = T("2024-05-09T12:00:00Z");
  EXPECT_TRUE(Tick(in.policies, state, in.volumes, exec, exec.now).empty());
  EXPECT_EQ(S(state.last_slot[{"db-nightly", "nightly"}]), "2024-05-09T03:00:00Z");
  ASSERT_EQ(exec.warnings.size(), 1u);
  EXPECT_EQ(exec.warnings[0],
            "policy db-nightly schedule nightly: saved slot 2031-01-01T03:00:00Z is later than "
            "now (2024-05-09T12:00:00Z): the clock was ahead or stepped back; resuming from "
            "2024-05-09T03:00:00Z, next slot 2024-05-10T03:00:00Z");
  EXPECT_EQ(NextWake(in.policies, exec.now), T("2024-05-10T03:00:00Z"));
  exec.now = T("2024-05-10T03:00:00Z");
  auto resumed = Tick(in.policies, state, in.volumes, exec, exec.now);
  ASSERT_FALSE(resumed.empty());
  EXPECT_EQ(resumed[0].kind, Action::Kind::kCreate);
  EXPECT_EQ(S(resumed[0].slot), "2024-05-10T03:00:00Z");
  EXPECT_EQ(exec.warnings.size(), 1u);
}

// A small step back right after a slot ran: the saved slot is the next slot anyway, so it
// is kept (not repeated) and nothing is reset or reported.
TEST(Planner, SmallStepBackDoesNotRepeatTheSlot) {
  PlanInput in = Input();
  RecordingExecutor exec(in.snapshots);
  SchedulerState state = in.state;
  exec.now = T("2024-05-10T03:00:00Z");
  ASSERT_FALSE(Tick(in.policies, state, in.volumes, exec, exec.now).empty());
  std::vector<std::string> warnings;
  EXPECT_TRUE(Step(in.policies, state, in.volumes, T("2024-05-10T02:59:58Z"), &warnings).empty());
  EXPECT_TRUE(warnings.empty());
  EXPECT_EQ(S(state.last_slot[{"db-nightly", "nightly"}]), "2024-05-10T03:00:00Z");
  EXPECT_TRUE(Step(in.policies, state, in.volumes, T("2024-05-10T03:00:00Z")).empty());
  EXPECT_EQ(Step(in.policies, state, in.volumes, T("2024-05-11T03:00:00Z")).size(), 2u);
}

// `policy run` without a schedule on a policy with several: refused, naming them, acting on
// nothing. Three merged manual runs used to count against every schedule and, with
// `monthly {count 3}`, deleted all monthly snapshots. With one schedule, it runs that one.
TEST(Planner, RunNowNeedsAScheduleWhenThePolicyHasSeveral) {
  PlanInput in = Input();
  in.policies = Policies(R"(name: db-nightly
target: {tags: {backup: nightly}}
schedules:
  - {name: daily, create: {every: 24h}, retain: {count: 7}}
  - {name: monthly, create: {cron: "30 2 1 * *"}, retain: {count: 3}}
)");
  RecordingExecutor exec(in.snapshots);
  exec.now = T("2024-05-09T13:00:00Z");
  auto refused = RunNow(in.policies[0], "", in.volumes, exec, exec.now);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message,
            "policy 'db-nightly' has 2 schedules; name the one to run (daily, monthly)");
  EXPECT_EQ(exec.Snapshots("v1").size(), in.snapshots.size());
  auto monthly = RunNow(in.policies[0], "monthly", in.volumes, exec, exec.now);
  ASSERT_TRUE(monthly.ok());
  EXPECT_EQ((*monthly)[0].tags.at("blocksnap:schedule"), "monthly");
  EXPECT_EQ(ChooseRunSchedule(Policies(kNightly)[0], "").value(), 0u);
  EXPECT_EQ(ChooseRunSchedule(in.policies[0], "monthly").value(), 1u);
}

}  // namespace
}  // namespace blocksnap::policy
