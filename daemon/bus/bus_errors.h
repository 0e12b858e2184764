// The one place where blocksnap::Code and D-Bus error names are translated, in both
// directions: the daemon replies with a named error, blocksnapctl turns it back into a
// Status whose message is the daemon's human text.
#pragma once

#include <systemd/sd-bus.h>

#include "util/status.h"

namespace blocksnap {

// "org.blocksnap1.Error.NotFound" for Code::kNotFound, ... kInternal -> ".Failed".
const char* BusErrorName(Code code);

// Fills *ret_error with the named error for status (which must not be OK) and its message
// (made valid UTF-8, util/utf8.h), and returns the negative errno a vtable handler returns
// to make sd-bus send that error.
int SetBusError(sd_bus_error* ret_error, const Status& status);

// The Status for a failed client call: r is the negative errno sd-bus returned, error what
// it filled in (may be unset, e.g. when the connection broke). Our error names map back to
// their Code; any other error becomes kInternal with "<name>: <message>" unless it is one of
// sd-bus' generic names that have an obvious code (InvalidArgs, AccessDenied, ...).
Status StatusFromBusError(const sd_bus_error* error, int r);

// Registers the error-name -> errno table with sd-bus (idempotent), so that
// sd_bus_error_get_errno() and sd-bus' own logging understand our names.
void RegisterBusErrorMap();

}  // namespace blocksnap
