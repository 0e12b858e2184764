#include "ctl/policy_commands.h"

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "ctl/output.h"
#include "ctl/policy_client.h"
#include "scheduler/policy_loader.h"

namespace blocksnap::ctl {
namespace {

struct PolicyArgs {
  std::string name;
  std::string schedule;
  std::vector<std::string> files;
  std::string policy_dir;
  uint32_t days = 7;
};

std::string Or(const Json& v, const char* fallback = "-") {
  if (!v.is_string() || v.get<std::string>().empty()) return fallback;
  return v.get<std::string>();
}

std::string JoinList(const Json& v) {
  std::string out;
  if (v.is_array())
    for (const Json& s : v) out += (out.empty() ? "" : ",") + s.get<std::string>();
  return out.empty() ? "-" : out;
}

// The daemon's policy directory as blocksnapd would resolve it without flags: the config
// file's policy_dir, else the built-in default.
std::string DefaultPolicyDir() {
  Environment env = Environment::FromProcess();
  Result<Config> c = ResolveConfig(env, {});
  return c.ok() ? c->policy_dir : DefaultConfig(env).policy_dir;
}

// Runs `call` on the daemon and prints an array of actions as lines (or JSON); exits 1 when
// any action failed, in either form.
template <typename Call>
int PrintActions(CommandContext& ctx, Call&& call, const char* none) {
  Result<BusClient*> client = ctx.Client();
  if (!client.ok()) return Fail(client.status());
  Result<Json> actions = call(**client);
  if (!actions.ok()) return Fail(actions.status());
  bool failed = false;
  for (const Json& a : *actions)
    if (!Or(a["error"], "").empty()) failed = true;
  if (ctx.json) {
    PrintJson(*actions);  // the document first, then the exit status says it failed
  } else {
    if (actions->empty()) std::cout << none << '\n';
    for (const Json& a : *actions) std::cout << a["line"].get<std::string>() << '\n';
  }
  if (!failed) return kExitOk;
  std::cout.flush();
  return Fail("some actions failed");
}

int RunList(CommandContext& ctx) {
  Result<BusClient*> client = ctx.Client();
  if (!client.ok()) return Fail(client.status());
  Result<Json> list = ListPolicies(**client);
  if (!list.ok()) return Fail(list.status());
  if (ctx.json) {
    PrintJson(*list);
    return kExitOk;
  }
  Table table({"NAME", "ENABLED", "VOLUMES", "LAST RUN", "RESULT", "NEXT RUN"});
  for (const Json& p : *list)
    table.AddRow({p["name"].get<std::string>(), p["enabled"].get<bool>() ? "yes" : "no",
                  JoinList(p["volumes"]), Or(p["last_run"]), Or(p["last_result"]),
                  Or(p["next_run"])});
  table.Print(std::cout);
  // Skipped files matter to whoever reads the table: say so, apart from the table.
  Result<std::vector<std::string>> errors = ListPolicyErrors(**client);
  if (errors.ok()) {
    std::cout.flush();
    for (const std::string& e : *errors) std::cerr << "skipped: " << e << '\n';
  }
  return kExitOk;
}

int RunShow(CommandContext& ctx, const PolicyArgs& a) {
  Result<BusClient*> client = ctx.Client();
  if (!client.ok()) return Fail(client.status());
  Result<Json> p = GetPolicy(**client, a.name);
  if (!p.ok()) return Fail(p.status());
  if (ctx.json) {
    PrintJson(*p);
    return kExitOk;
  }
  std::cout << Or((*p)["text"], "");
  if (!Or((*p)["text"], "").ends_with('\n')) std::cout << '\n';
  Details d;
  d.Add("File", Or((*p)["file"]));
  d.Add("Volumes", JoinList((*p)["volumes"]));
  d.Add("Last run", Or((*p)["last_run"]));
  d.Add("Result", Or((*p)["last_result"]));
  d.Add("Next run", Or((*p)["next_run"]));
  d.Print(std::cout);
  return kExitOk;
}

int RunValidate(CommandContext& ctx, const PolicyArgs& a) {
  std::vector<std::string> files = a.files;
  std::vector<std::string> list_errors;
  std::string dir;
  if (files.empty()) {
    dir = a.policy_dir.empty() ? DefaultPolicyDir() : a.policy_dir;
    files = scheduler::ListPolicyFiles(dir, &list_errors);
  }
  policy::PolicySet set = scheduler::LoadPolicyFiles(files);
  std::vector<std::string> errors;
  for (const std::string& e : list_errors) errors.push_back(dir + ":1:1: " + e);
  for (const policy::Diagnostic& d : set.errors) errors.push_back(d.ToString());
  if (ctx.json) {
    Json names = Json::array();
    for (const policy::Policy& p : set.policies) names.push_back(p.name);
    PrintJson({{"ok", errors.empty()}, {"files", files}, {"policies", names}, {"errors", errors}});
  } else {
    for (const std::string& e : errors) std::cout << e << '\n';
    if (errors.empty()) std::cout << set.policies.size() << " policies OK\n";
  }
  if (errors.empty()) return kExitOk;
  std::cout.flush();
  std::cerr << "blocksnapctl: " << errors.size() << " error(s) in policy files\n";
  return kExitFailure;
}

int RunReload(CommandContext& ctx) {
  Result<BusClient*> client = ctx.Client();
  if (!client.ok()) return Fail(client.status());
  Result<Json> r = ReloadPolicies(**client);
  if (!r.ok()) return Fail(r.status());
  if (ctx.json) {
    PrintJson(*r);
    return kExitOk;
  }
  std::cout << "reloaded: " << (*r)["policies"].get<uint32_t>() << " policies\n";
  for (const Json& e : (*r)["errors"]) std::cout << "skipped: " << e.get<std::string>() << '\n';
  return kExitOk;
}

}  // namespace

void AddPolicyCommands(CLI::App& app, CommandContext& ctx) {
  auto args = std::make_shared<PolicyArgs>();
  CLI::App* group = app.add_subcommand("policy", "Lifecycle policies: list, plan, run, reload");
  group->require_subcommand(1);

  CLI::App* list = group->add_subcommand("list", "List policies, their volumes and runs");
  list->callback([&ctx] { ctx.action = [&ctx] { return RunList(ctx); }; });

  CLI::App* show = group->add_subcommand("show", "Show one policy");
  show->add_option("NAME", args->name, "Policy name")->required();
  show->callback([&ctx, args] { ctx.action = [&ctx, args] { return RunShow(ctx, *args); }; });

  CLI::App* validate =
      group->add_subcommand("validate", "Check policy files locally (no daemon needed)");
  validate->add_option("FILE", args->files, "Policy files (default: *.yaml of the policy dir)");
  validate->add_option("--policy-dir", args->policy_dir,
                       "Directory to check (default: the daemon's default policy dir)");
  validate->callback(
      [&ctx, args] { ctx.action = [&ctx, args] { return RunValidate(ctx, *args); }; });

  CLI::App* plan = group->add_subcommand("plan", "What the policies would do; acts on nothing");
  plan->add_option("--days", args->days, "Days ahead, 1..366")
      ->check(CLI::Range(1, 366))
      ->capture_default_str();
  plan->callback([&ctx, args] {
    ctx.action = [&ctx, args] {
      return PrintActions(
          ctx, [&](BusClient& c) { return PlanPolicies(c, args->days); }, "nothing planned");
    };
  });

  CLI::App* run = group->add_subcommand("run", "Run a policy now, as the scheduler would");
  run->add_option("NAME", args->name, "Policy name")->required();
  run->add_option("--schedule", args->schedule,
                  "The schedule to run (needed when the policy has several)");
  run->callback([&ctx, args] {
    ctx.action = [&ctx, args] {
      // A policy with several schedules and no --schedule: the daemon refuses it as an
      // invalid argument, which is a usage error here (exit 2).
      bool usage = false;
      int rc = PrintActions(
          ctx,
          [&](BusClient& c) {
            Result<Json> r = RunPolicy(c, args->name, args->schedule);
            usage = !r.ok() && r.status().code() == Code::kInvalidArgument;
            return r;
          },
          "no volume matched");
      return usage ? kExitUsage : rc;
    };
  });

  CLI::App* reload = group->add_subcommand("reload", "Re-read the policy directory");
  reload->callback([&ctx] { ctx.action = [&ctx] { return RunReload(ctx); }; });
}

}  // namespace blocksnap::ctl
