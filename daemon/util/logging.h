// Logging setup: spdlog to the journal when started by systemd ($JOURNAL_STREAM names stderr),
// as structured entries with fields from LogFields scopes (service/log_fields.h); else to
// stderr. The level comes from config/--log-level and may change on reload.
#pragma once

#include <string>

#include "util/status.h"

namespace blocksnap {

// Installs the default logger. Call once, before any other thread starts.
void SetUpLogging();
// "trace".."off"; InvalidArgument for anything else.
Status SetLogLevel(const std::string& level);

}  // namespace blocksnap
