// Service-manager notifications (sd_notify): readiness, reload, status, stop and watchdog.
//
// Every call is a no-op when the daemon was not started by a service manager (NOTIFY_SOCKET is
// unset). Failing to notify never fails the daemon: it is logged at debug and ignored.
#pragma once

#include <string>

namespace blocksnap {

// "READY=1" plus "STATUS=<status>": the daemon serves (RocksDB open, listeners accepting).
// Also ends a reload started with NotifyReloading().
void NotifyReady(const std::string& status);

// "READY=1" after a reload, with the STATUS= of the last NotifyReady (what the daemon serves).
void NotifyReloaded();

// "RELOADING=1" with the monotonic time (MONOTONIC_USEC=, which Type=notify-reload wants).
void NotifyReloading();

// "STATUS=<status>": a one-line human-readable state shown by `systemctl status`.
void NotifyStatus(const std::string& status);

// "STOPPING=1" plus "STATUS=<status>": shutdown has begun.
void NotifyStopping(const std::string& status);

// "WATCHDOG=1": the daemon is alive. Use Watchdog (service/watchdog.h) rather than this.
void NotifyWatchdog();

}  // namespace blocksnap
