// Helpers shared by the policy and testing handlers: the scheduler from a handler's
// userdata (the Services), and replies sent later from the loop for work done on the
// scheduler's worker.
#pragma once

#include <spdlog/spdlog.h>
#include <systemd/sd-bus.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "bus/bus_errors.h"
#include "bus/bus_ptr.h"
#include "bus/policy_codec.h"
#include "scheduler/scheduler.h"
#include "services.h"

namespace blocksnap {

inline Services& Svc(void* userdata) {
  return *static_cast<Services*>(userdata);
}

inline Result<scheduler::Scheduler*> Sched(void* userdata) {
  scheduler::Scheduler* s = Svc(userdata).scheduler;
  if (!s) return Busy("the policy scheduler is not running");
  return s;
}

// A method call answered later, from the loop: keeps the call and its connection alive.
class PendingReply {
 public:
  explicit PendingReply(sd_bus_message* call)
      : call_(sd_bus_message_ref(call)), bus_(sd_bus_ref(sd_bus_message_get_bus(call))) {}
  ~PendingReply() { sd_bus_unref(bus_); }
  PendingReply(const PendingReply&) = delete;
  PendingReply& operator=(const PendingReply&) = delete;

  // Builds the reply with append(reply) and sends it. If the reply cannot be built (append
  // fails, e.g. sd-bus refuses a string) or sent, the caller gets an Internal error instead,
  // never silence: a deferred call left unanswered hangs a client without a timeout. When
  // the peer has left, that error goes nowhere either, which is fine.
  template <typename F>
  void Reply(F&& append) noexcept {
    int r = -ENOMEM;
    const char* step = "building";
    try {
      sd_bus_message* raw = nullptr;
      r = sd_bus_message_new_method_return(call_.get(), &raw);
      MessagePtr reply(raw);
      if (r >= 0) r = append(reply.get());
      if (r >= 0) {
        step = "sending";
        r = sd_bus_send(bus_, reply.get(), nullptr);
      }
    } catch (const std::exception& e) {
      spdlog::error("building the reply to {}: {}", Member(), e.what());
      r = -ENOMEM;
    }
    if (r >= 0) return;
    spdlog::warn("{} the reply to {} failed: {}; answering with an error", step, Member(),
                 std::strerror(-r));
    Error(Internal(std::string("internal error: ") + step +
                   " the reply failed: " + std::strerror(-r)));
  }
  void Error(const Status& st) noexcept {
    sd_bus_error error = SD_BUS_ERROR_NULL;
    int r = SetBusError(&error, st);
    r = sd_bus_reply_method_errno(call_.get(), r, &error);
    sd_bus_error_free(&error);
    if (r < 0) spdlog::debug("answering {}: {}, ignoring", Member(), std::strerror(-r));
  }

 private:
  const char* Member() const {
    const char* member = sd_bus_message_get_member(call_.get());
    return member ? member : "?";
  }

  MessagePtr call_;
  sd_bus* bus_;
};

// The completion of a queued action list: replies aa{sv} or the error.
inline scheduler::ActionsDone ReplyActions(sd_bus_message* call) {
  auto pending = std::make_shared<PendingReply>(call);
  return [pending](Result<std::vector<policy::Action>> actions) {
    if (!actions.ok()) return pending->Error(actions.status());
    pending->Reply([&](sd_bus_message* m) { return AppendActions(m, *actions); });
  };
}

}  // namespace blocksnap
