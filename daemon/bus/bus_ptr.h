// RAII owners for the sd-bus and sd-event C handles used by the control plane and by
// blocksnapctl. Each owner drops one reference when it goes out of scope.
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include <memory>

namespace blocksnap {

namespace bus_internal {

struct BusUnref {
  // flush_close_unref: queued replies and signals are written out before the fd closes, so
  // a peer that disconnects right after its call still gets its answer.
  void operator()(sd_bus* b) const { sd_bus_flush_close_unref(b); }
};
struct SlotUnref {
  void operator()(sd_bus_slot* s) const { sd_bus_slot_unref(s); }
};
struct MessageUnref {
  void operator()(sd_bus_message* m) const { sd_bus_message_unref(m); }
};
struct CredsUnref {
  void operator()(sd_bus_creds* c) const { sd_bus_creds_unref(c); }
};
struct EventSourceUnref {
  // Disable first: an unref'd source whose fd is still referenced elsewhere must not fire.
  void operator()(sd_event_source* s) const { sd_event_source_disable_unref(s); }
};

}  // namespace bus_internal

using BusPtr = std::unique_ptr<sd_bus, bus_internal::BusUnref>;
using SlotPtr = std::unique_ptr<sd_bus_slot, bus_internal::SlotUnref>;
using MessagePtr = std::unique_ptr<sd_bus_message, bus_internal::MessageUnref>;
using CredsPtr = std::unique_ptr<sd_bus_creds, bus_internal::CredsUnref>;
using EventSourcePtr = std::unique_ptr<sd_event_source, bus_internal::EventSourceUnref>;

// sd_bus_error that frees itself. Pass get() to sd-bus calls that fill an error.
class BusError {
 public:
  BusError() = default;
  BusError(const BusError&) = delete;
  BusError& operator=(const BusError&) = delete;
  ~BusError() { sd_bus_error_free(&error_); }

  sd_bus_error* get() { return &error_; }
  bool is_set() const { return sd_bus_error_is_set(&error_) > 0; }
  const char* name() const { return error_.name; }
  const char* message() const { return error_.message; }

 private:
  sd_bus_error error_{};  // == SD_BUS_ERROR_NULL (a C compound literal, not C++)
};

}  // namespace blocksnap
