#include "service/notify.h"

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include <cstring>
#include <string>

namespace blocksnap {
namespace {

void Send(const std::string& state) {
  int r = sd_notify(0, state.c_str());
  if (r < 0) spdlog::debug("sd_notify({}) failed: {}, ignoring", state, strerror(-r));
}

// A STATUS= value is one line.
std::string StatusLine(const std::string& status) {
  std::string line = status;
  for (char& c : line)
    if (c == '\n') c = ' ';
  return "STATUS=" + line;
}

// The STATUS= of the last NotifyReady, restored after a reload. Main thread only.
std::string& ServingStatus() {
  static std::string status;
  return status;
}

}  // namespace

void NotifyReady(const std::string& status) {
  ServingStatus() = status;
  Send("READY=1\n" + StatusLine(status));
}

void NotifyReloaded() {
  Send("READY=1\n" + StatusLine(ServingStatus()));
}

void NotifyReloading() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t usec = static_cast<uint64_t>(ts.tv_sec) * 1000000u + ts.tv_nsec / 1000;
  Send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec) + "\nSTATUS=Reloading configuration");
}

void NotifyStatus(const std::string& status) {
  Send(StatusLine(status));
}

void NotifyStopping(const std::string& status) {
  Send("STOPPING=1\n" + StatusLine(status));
}

void NotifyWatchdog() {
  Send("WATCHDOG=1");
}

}  // namespace blocksnap
