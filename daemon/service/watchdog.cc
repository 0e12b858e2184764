#include "service/watchdog.h"

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <algorithm>
#include <cstring>

#include "service/notify.h"

namespace blocksnap {

Watchdog::Watchdog(PrivateTag, std::chrono::microseconds interval, std::function<void()> ping)
    : interval_(interval), ping_(std::move(ping)) {}

Watchdog::~Watchdog() = default;

std::unique_ptr<Watchdog> Watchdog::ForTest(std::chrono::microseconds interval,
                                            std::function<void()> ping) {
  return std::make_unique<Watchdog>(PrivateTag{}, interval, std::move(ping));
}

Result<std::unique_ptr<Watchdog>> Watchdog::Start(sd_event* event) {
  uint64_t usec = 0;
  // unset_environment=0: children we might spawn are not ours to watch anyway, and keeping the
  // variables lets a reload re-read them if ever needed.
  int r = sd_watchdog_enabled(0, &usec);
  if (r < 0) return FromErrno(-r, "reading WATCHDOG_USEC");
  if (r == 0 || usec == 0) return std::unique_ptr<Watchdog>();

  auto dog = std::make_unique<Watchdog>(PrivateTag{}, std::chrono::microseconds(usec),
                                        [] { NotifyWatchdog(); });
  const uint64_t period = usec / 2;
  sd_event_source* raw = nullptr;
  // Accuracy: a tenth of the period, so a short test interval is kept as well as a long one.
  r = sd_event_add_time_relative(event, &raw, CLOCK_MONOTONIC, period,
                                 std::max<uint64_t>(period / 10, 1), &Watchdog::OnTimer, dog.get());
  if (r < 0) return FromErrno(-r, "arming the watchdog timer");
  dog->timer_.reset(raw);
  sd_event_source_set_description(raw, "watchdog");
  spdlog::info("watchdog enabled: WATCHDOG=1 every {} ms while the event loops are healthy",
               period / 1000);
  return dog;
}

void Watchdog::AddSource(std::string name, HealthSource* source) {
  sources_.push_back({std::move(name), source});
}

void Watchdog::RemoveSource(HealthSource* source) {
  std::erase_if(sources_, [source](const Source& s) { return s.source == source; });
}

bool Watchdog::Check(Clock::time_point now) {
  for (const Source& s : sources_) {
    if (s.source->Healthy(now)) continue;
    if (withheld_by_ != s.name) {
      spdlog::warn("watchdog: {} shows no progress, withholding WATCHDOG=1", s.name);
      NotifyStatus("Unhealthy: " + s.name + " shows no progress");
      withheld_by_ = s.name;
    }
    return false;
  }
  if (!withheld_by_.empty()) {
    spdlog::info("watchdog: {} makes progress again", withheld_by_);
    withheld_by_.clear();
  }
  ping_();
  return true;
}

int Watchdog::OnTimer(sd_event_source* s, uint64_t /*usec*/, void* userdata) noexcept {
  auto* dog = static_cast<Watchdog*>(userdata);
  try {
    dog->Check(Clock::now());
  } catch (const std::exception& e) {
    spdlog::error("watchdog check failed: {}, ignoring", e.what());
  }
  int r = sd_event_source_set_time_relative(s, static_cast<uint64_t>(dog->period().count()));
  if (r >= 0) r = sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
  if (r < 0) spdlog::error("re-arming the watchdog timer: {}", strerror(-r));
  return 0;
}

}  // namespace blocksnap
