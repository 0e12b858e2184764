// Policy method handlers. Reading ones answer at once from the scheduler's in-memory view;
// RunPolicy, ReloadPolicies and SetTime queue work on the scheduler's worker and reply when
// it has finished (the handler returns without a reply; the reply is sent from the loop).
#include "bus/policy_methods.h"

#include <memory>
#include <string>
#include <vector>

#include "bus/basic_codec.h"
#include "bus/bus_context.h"
#include "bus/bus_names.h"
#include "bus/bus_ptr.h"
#include "bus/credentials.h"
#include "bus/policy_codec.h"
#include "bus/policy_reply.h"
#include "bus/policy_testing.h"
#include "scheduler/scheduler.h"

namespace blocksnap {
namespace {

int ListPolicies(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
  return GuardHandler(ret_error, [&]() -> int {
    Result<scheduler::Scheduler*> s = Sched(userdata);
    if (!s.ok()) return SetBusError(ret_error, s.status());
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_return(m, &raw);
    MessagePtr reply(raw);
    if (r >= 0) r = sd_bus_message_open_container(reply.get(), 'a', kPolicyDictSignature);
    for (const scheduler::PolicyStatus& st : (*s)->List())
      if (r >= 0) r = AppendPolicyDict(reply.get(), st);
    if (r >= 0) r = sd_bus_message_close_container(reply.get());
    if (r < 0) return r;
    return sd_bus_send(nullptr, reply.get(), nullptr);
  });
}

int ListPolicyErrors(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
  return GuardHandler(ret_error, [&]() -> int {
    Result<scheduler::Scheduler*> s = Sched(userdata);
    if (!s.ok()) return SetBusError(ret_error, s.status());
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_return(m, &raw);
    MessagePtr reply(raw);
    if (r >= 0) r = AppendStrings(reply.get(), (*s)->load_errors());
    if (r < 0) return r;
    return sd_bus_send(nullptr, reply.get(), nullptr);
  });
}

int GetPolicy(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
  return GuardHandler(ret_error, [&]() -> int {
    const char* name = nullptr;
    int r = sd_bus_message_read(m, "s", &name);
    if (r < 0) return r;
    Result<scheduler::Scheduler*> s = Sched(userdata);
    if (!s.ok()) return SetBusError(ret_error, s.status());
    Result<scheduler::PolicyStatus> st = (*s)->Get(name);
    if (!st.ok()) return SetBusError(ret_error, st.status());
    Result<std::string> text = (*s)->Describe(name);
    if (!text.ok()) return SetBusError(ret_error, text.status());
    sd_bus_message* raw = nullptr;
    r = sd_bus_message_new_method_return(m, &raw);
    MessagePtr reply(raw);
    if (r >= 0) r = AppendPolicyDict(reply.get(), *st, *text);
    if (r < 0) return r;
    return sd_bus_send(nullptr, reply.get(), nullptr);
  });
}

int PlanPolicies(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
  return GuardHandler(ret_error, [&]() -> int {
    uint32_t days = 0;
    int r = sd_bus_message_read(m, "u", &days);
    if (r < 0) return r;
    Result<scheduler::Scheduler*> s = Sched(userdata);
    if (!s.ok()) return SetBusError(ret_error, s.status());
    Result<policy::Plan> plan = (*s)->Plan(static_cast<int>(days));
    if (!plan.ok()) return SetBusError(ret_error, plan.status());
    sd_bus_message* raw = nullptr;
    r = sd_bus_message_new_method_return(m, &raw);
    MessagePtr reply(raw);
    if (r >= 0) r = AppendActions(reply.get(), plan->actions);
    if (r < 0) return r;
    return sd_bus_send(nullptr, reply.get(), nullptr);
  });
}

int RunPolicy(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
  return GuardHandler(ret_error, [&]() -> int {
    const char* name = nullptr;
    const char* schedule = nullptr;
    int r = sd_bus_message_read(m, "ss", &name, &schedule);
    if (r < 0) return r;
    Result<scheduler::Scheduler*> s = Sched(userdata);
    if (!s.ok()) return SetBusError(ret_error, s.status());
    if (!(*s)->Get(name).ok())
      return SetBusError(ret_error, NotFound("no policy '" + std::string(name) + "'"));
    if (Status st = CheckMayMutate(m, "running a policy"); !st.ok())
      return SetBusError(ret_error, st);
    Status st = (*s)->RunPolicy(name, schedule, ReplyActions(m));
    if (!st.ok()) return SetBusError(ret_error, st);
    return 1;  // answered when the round is done
  });
}

int ReloadPolicies(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
  return GuardHandler(ret_error, [&]() -> int {
    Result<scheduler::Scheduler*> s = Sched(userdata);
    if (!s.ok()) return SetBusError(ret_error, s.status());
    if (Status st = CheckMayMutate(m, "reloading policies"); !st.ok())
      return SetBusError(ret_error, st);
    Services& services = Svc(userdata);
    if (services.reload) {
      if (Status st = services.reload(); !st.ok()) return SetBusError(ret_error, st);
    }
    auto pending = std::make_shared<PendingReply>(m);
    scheduler::Scheduler* sched = *s;
    sched->Barrier([pending, sched] {
      const uint32_t count = static_cast<uint32_t>(sched->policy_count());
      const std::vector<std::string> errors = sched->load_errors();
      pending->Reply([&](sd_bus_message* reply) {
        int r = sd_bus_message_append(reply, "u", count);
        return r < 0 ? r : AppendStrings(reply, errors);
      });
    });
    return 1;
  });
}

const sd_bus_vtable kPolicyVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD_WITH_NAMES("ListPolicies", "", "", "aa{sv}", SD_BUS_PARAM(policies), ListPolicies,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("ListPolicyErrors", "", "", "as", SD_BUS_PARAM(errors),
                             ListPolicyErrors, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("GetPolicy", "s", SD_BUS_PARAM(name), "a{sv}", SD_BUS_PARAM(policy),
                             GetPolicy, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("PlanPolicies", "u", SD_BUS_PARAM(days), "aa{sv}",
                             SD_BUS_PARAM(actions), PlanPolicies, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("RunPolicy", "ss", SD_BUS_PARAM(name) SD_BUS_PARAM(schedule), "aa{sv}",
                             SD_BUS_PARAM(actions), RunPolicy, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("ReloadPolicies", "", "", "uas",
                             SD_BUS_PARAM(policies) SD_BUS_PARAM(errors), ReloadPolicies,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

}  // namespace

int AddPolicyMethods(sd_bus* bus, BusContext* ctx) {
  // userdata is the Services, not the BusContext the first Manager vtable has: sd-bus
  // refuses a second vtable of one interface with the same userdata.
  Services* services = ctx->services;
  int r = sd_bus_add_object_vtable(bus, nullptr, kManagerPath, kManagerInterface, kPolicyVtable,
                                   services);
  if (r < 0 || !services->scheduler || !services->scheduler->has_test_clock()) return r;
  return AddTestingObject(bus, services);
}

}  // namespace blocksnap
