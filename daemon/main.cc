// blocksnapd: parses the command line, resolves the config, and wires the parts together:
// RocksDB, the volume manager, the NBD server (io_uring loops), the control plane (sd-bus on
// the main thread's sd-event loop). Signals: SIGTERM/SIGINT stop, SIGHUP reloads.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <filesystem>
#include <memory>

#include "bus/bus_service.h"  // control plane
#include "config/config.h"
#include "io/nbd_server.h"         // NBD server
#include "io/snapshot_export.h"    // [exports]
#include "policy/time_types.h"     // [scheduler]
#include "scheduler/main_queue.h"  // [restore] bus events from hydrator threads
#include "scheduler/scheduler.h"   // [scheduler]
#include "service/listen_fds.h"    // [systemd]
#include "service/log_fields.h"    // [systemd]
#include "service/notify.h"        // [systemd]
#include "service/watchdog.h"      // [systemd]
#include "services.h"
#include "snapshot/restore_manager.h"  // [restore]
#include "snapshot/snapshot_manager.h"
#include "store/db.h"
#include "util/logging.h"
#include "volume/volume_manager.h"
#include "wiring/snapshot_wiring.h"

namespace blocksnap {
namespace {

struct EventUnref {
  void operator()(sd_event* e) const { sd_event_unref(e); }
};
using EventPtr = std::unique_ptr<sd_event, EventUnref>;

// Creates dir (and its parents) or takes the existing one, which must be ours: the runtime
// dir of a user without XDG_RUNTIME_DIR is /tmp/blocksnap-<uid>, and a directory another
// user made there first could have its sockets replaced (a client would then read and write
// that user's disk). The data dir is checked the same way.
Status MakeDir(const std::string& dir, mode_t mode) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return FromErrno(ec.value(), "creating " + dir);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return FromErrno(errno, "checking " + dir);
  if (!S_ISDIR(st.st_mode)) return InvalidArgument(dir + " is not a directory");
  if (st.st_uid != ::geteuid())
    return PermissionDenied(dir + " belongs to uid " + std::to_string(st.st_uid) +
                            ", not to this daemon's uid " + std::to_string(::geteuid()) +
                            "; refusing to use it");
  if (::chmod(dir.c_str(), mode) != 0) return FromErrno(errno, "setting the mode of " + dir);
  return Status::Ok();
}

// Creates the volumes the config declares and that do not exist yet.
Status EnsureDeclaredVolumes(VolumeManager& volumes, const Config& config) {
  for (const auto& d : config.volumes) {
    if (volumes.Get(d.name).ok()) continue;
    LogFields log_fields{{kLogVolume, d.name}};  // [systemd] VOLUME= on its journal entries
    auto r = volumes.Create({d.name, d.size, d.chunk_size, d.tags});
    if (!r.ok()) return r.status().WithContext("creating declared volume '" + d.name + "'");
  }
  return Status::Ok();
}

// "nbd://HOST:PORT" of the first TCP endpoint we serve (an inherited socket when
// socket-activated), for the volumes' Uri property; "" when we serve no TCP.
std::string NbdUriBase(const std::vector<std::string>& listen, const std::vector<int>& inherited) {
  if (inherited.empty()) return listen.empty() ? "" : "nbd://" + listen.front();
  for (int fd : inherited) {
    std::string addr = DescribeSocket(fd);
    if (!addr.empty() && (addr[0] == '[' || std::isdigit(static_cast<unsigned char>(addr[0]))))
      return "nbd://" + addr;
  }
  return "";
}

int OnStopSignal(sd_event_source* s, const signalfd_siginfo* si, void*) noexcept {
  spdlog::info("received {}, shutting down", strsignal(static_cast<int>(si->ssi_signo)));
  sd_event_exit(sd_event_source_get_event(s), 0);
  return 0;
}

// The first exit source: before the bus's (SnapshotAsync joins its workers there), running
// snapshot copies are cancelled and dumps into stalled streams told to end.
int OnExitStopSnapshots(sd_event_source*, void* userdata) noexcept {
  static_cast<SnapshotManager*>(userdata)->Shutdown();
  return 0;
}

int OnReloadSignal(sd_event_source*, const signalfd_siginfo*, void* userdata) noexcept {
  auto* services = static_cast<Services*>(userdata);
  NotifyReloading();  // [systemd]
  Status st = services->reload();
  if (st.ok())
    spdlog::info("reloaded configuration");
  else
    spdlog::error("reload failed, keeping the previous configuration: {}", st.message());
  NotifyReloaded();  // [systemd]
  return 0;
}

int Run(const Environment& env, const ConfigOverrides& overrides,
        std::optional<policy::TimePoint> test_clock, bool debug_no_tracking) {
  // [systemd] Sockets handed over by blocksnapd.socket / systemd-socket-activate; the NBD
  // server accepts on them instead of binding its configured addresses.
  std::vector<int> inherited_fds = TakeListenFds();
  auto resolved = ResolveConfig(env, overrides);
  if (!resolved.ok()) {
    spdlog::critical("{}", resolved.status().message());
    return 1;
  }
  Config config = std::move(resolved).value();
  if (Status st = SetLogLevel(config.log_level); !st.ok()) {
    spdlog::critical("{}", st.message());
    return 1;
  }
  spdlog::info("blocksnapd starting: config {}, data {}",
               config.config_file.empty() ? "(built-in defaults)" : config.config_file,
               config.data_dir);
  if (!inherited_fds.empty())  // [systemd]
    spdlog::info("socket activation: {} listening socket(s): {}", inherited_fds.size(),
                 DescribeSockets(inherited_fds));

  for (auto [dir, mode] : {std::pair{config.data_dir, 0700}, {config.runtime_dir, 0755}}) {
    if (Status st = MakeDir(dir, static_cast<mode_t>(mode)); !st.ok()) {
      spdlog::critical("{}", st.message());
      return 1;
    }
  }

  auto db = Db::Open(config.data_dir + "/db");
  if (!db.ok()) {
    spdlog::critical("{}", db.status().message());
    return 1;
  }
  auto volumes = VolumeManager::Open(**db, config.data_dir);
  if (!volumes.ok()) {
    spdlog::critical("{}", volumes.status().message());
    return 1;
  }

  // Snapshots: recover what a crash left, then track every volume's writes (dirty chunks,
  // copy-before-write) through the write hook the NBD server installs per volume.
  auto snapshots = SnapshotManager::Open(**db);
  if (!snapshots.ok()) {
    spdlog::critical("{}", snapshots.status().message());
    return 1;
  }
  auto wiring = SnapshotWiring::Connect(**volumes, **snapshots);
  if (!wiring.ok()) {
    spdlog::critical("{}", wiring.status().message());
    return 1;
  }
  // Declared volumes are created once the wiring listens, so they start tracked as new.
  if (Status st = EnsureDeclaredVolumes(**volumes, config); !st.ok()) {
    spdlog::critical("{}", st.message());
    return 1;
  }
  // [restore] Volumes from snapshots: unfinished hydrations resume before anything is served.
  auto restore =
      std::make_unique<RestoreManager>(**db, **volumes, **snapshots, config.hydrate_rate);
  // [restore] A deleted volume's hydration goes with it (and so its image's open fd).
  (*wiring)->set_volume_deleted_observer(
      [r = restore.get()](uint64_t volume_id) { r->VolumeDeleted(volume_id); });
  if (Status st = restore->Resume(); !st.ok()) {
    spdlog::critical("{}", st.message());
    return 1;
  }
  std::unique_ptr<scheduler::Scheduler> policy_scheduler;  // [scheduler]

  Services services;
  services.db = db->get();
  services.volumes = volumes->get();
  services.snapshots = snapshots->get();
  services.restore = restore.get();  // [restore]
  services.reload = [&env, &overrides, &config, &policy_scheduler]() -> Status {
    BS_ASSIGN_OR_RETURN(Config fresh, ResolveConfig(env, overrides));
    BS_RETURN_IF_ERROR(SetLogLevel(fresh.log_level));
    if (fresh.listen != config.listen || fresh.unix_path != config.unix_path ||
        fresh.data_dir != config.data_dir || fresh.control_path != config.control_path)
      spdlog::warn("listen addresses, sockets and data_dir change only on restart, ignoring");
    config.log_level = fresh.log_level;
    config.policy_dir = fresh.policy_dir;
    if (policy_scheduler) policy_scheduler->Reload(config.policy_dir);  // [scheduler]
    return Status::Ok();
  };

  sd_event* raw_event = nullptr;
  if (int r = sd_event_default(&raw_event); r < 0) {
    spdlog::critical("creating the event loop: {}", strerror(-r));
    return 1;
  }
  EventPtr event(raw_event);
  sd_event_add_signal(event.get(), nullptr, SIGTERM, OnStopSignal, nullptr);
  sd_event_add_signal(event.get(), nullptr, SIGINT, OnStopSignal, nullptr);
  sd_event_add_signal(event.get(), nullptr, SIGHUP, OnReloadSignal, &services);
  sd_event_source* stop_snapshots = nullptr;
  if (sd_event_add_exit(event.get(), &stop_snapshots, OnExitStopSnapshots, snapshots->get()) >= 0)
    sd_event_source_set_priority(stop_snapshots, SD_EVENT_PRIORITY_IMPORTANT);
  EventSourcePtr stop_snapshots_source(stop_snapshots);
  // [systemd] WATCHDOG=1 at half of WatchdogSec= while the event loops are healthy.
  auto watchdog = Watchdog::Start(event.get());
  if (!watchdog.ok()) {
    spdlog::critical("{}", watchdog.status().message());
    return 1;
  }

  // NBD server: every volume is an export; inherited sockets replace the configured ones.
  NbdServerOptions nbd_options;                                                 // NBD server
  nbd_options.inherited_fds = inherited_fds;                                    // NBD server
  if (inherited_fds.empty()) {                                                  // NBD server
    nbd_options.listen = config.listen;                                         // NBD server
    nbd_options.unix_path = config.unix_path;                                   // NBD server
  }                                                                             // NBD server
  nbd_options.threads = config.io_threads;                                      // NBD server
  nbd_options.max_connections = config.max_connections;                         // NBD server
  nbd_options.inline_write_max = config.inline_write_max;                       // NBD server
  nbd_options.write_hook = restore->WrapHooks((*wiring)->WriteHookProvider());  // [restore]
  nbd_options.handshake_timeout = std::chrono::seconds(config.handshake_timeout_s);
  if (debug_no_tracking) {  // benchmarks: the cost of dirty tracking, measured by its absence
    spdlog::warn("--debug-no-tracking: writes are not tracked and snapshots are refused");
    nbd_options.write_hook = restore->WrapHooks({});  // restores still fill lazily
    if (Status st = (*snapshots)->DisableTracking(); !st.ok()) {
      spdlog::critical("--debug-no-tracking: {}", st.message());
      return 1;
    }
  }
  // [exports] Completed snapshots as read-only exports, with their chunk cache and readers.
  auto snapshot_exports = std::make_unique<io::SnapshotExports>(**snapshots, config.export_cache,
                                                                config.export_readers);
  nbd_options.snapshot_exports = snapshot_exports.get();
  auto nbd_server = NbdServer::Start(nbd_options, **volumes);  // NBD server
  if (!nbd_server.ok()) {                                      // NBD server
    spdlog::critical("{}", nbd_server.status().message());     // NBD server
    return 1;                                                  // NBD server
  }                                                            // NBD server
  (*volumes)->set_attached_clients(nbd_server->get());         // NBD server
  services.clients = nbd_server->get();                        // NBD server
  if (*watchdog)  // [systemd] a stuck io loop withholds WATCHDOG=1
    for (HealthSource* h : (*nbd_server)->HealthSources()) (*watchdog)->AddSource("nbd loop", h);

  // [scheduler] Policies: before the control plane, which serves the scheduler's methods.
  scheduler::SchedulerOptions sched_options{config.policy_dir, test_clock};  // [scheduler]
  auto started = scheduler::Scheduler::Start(event.get(), sched_options, **db, **volumes,
                                             **snapshots);  // [scheduler]
  if (!started.ok()) {                                      // [scheduler]
    spdlog::critical("{}", started.status().message());     // [scheduler]
    return 1;                                               // [scheduler]
  }                                                         // [scheduler]
  policy_scheduler = std::move(started).value();            // [scheduler]
  services.scheduler = policy_scheduler.get();              // [scheduler]

  // Control plane: the private control socket always, a bus per config.bus.
  BusOptions bus_options;                          // control plane
  bus_options.control_path = config.control_path;  // control plane
  bus_options.bus = config.bus;                    // control plane
  bus_options.nbd_uri_base = NbdUriBase(config.listen, inherited_fds);
  auto bus_service = BusService::Start(event.get(), bus_options, services);  // control plane
  if (!bus_service.ok()) {                                                   // control plane
    spdlog::critical("{}", bus_service.status().message());                  // control plane
    return 1;                                                                // control plane
  }                                                                          // control plane
  // [restore] A restore that finishes hydrating: PropertiesChanged(State) on the bus thread.
  auto restore_events = scheduler::MainQueue::Create(event.get());
  if (restore_events.ok()) {
    BusService* bus = bus_service->get();
    scheduler::MainQueue* queue = restore_events->get();
    restore->set_on_state_changed([queue, bus](const VolumeRecord& rec) {
      queue->Post([bus, rec] { bus->VolumeChanged(rec, "State"); });
    });
  }

  // [systemd] READY=1 once RocksDB is open and the listeners accept; STATUS= says what we serve.
  NotifyReady(fmt::format("Serving {} volume(s) over NBD on {}", (*volumes)->List().size(),
                          inherited_fds.empty() ? DescribeEndpoints(config.listen, config.unix_path)
                                                : DescribeSockets(inherited_fds)));
  spdlog::info("blocksnapd ready");
  int r = sd_event_loop(event.get());
  NotifyStopping("Shutting down");  // [systemd]
  if (r < 0) spdlog::error("event loop failed: {}", strerror(-r));

  // Shutdown in reverse order of start: clients first, then the store.
  restore->set_on_state_changed(nullptr);  // [restore] before the bus goes
  // Normally done by the exit source already (idempotent); again for a loop that failed
  // before running it: a policy round waiting for its snapshots' copies must end.
  (*snapshots)->Shutdown();
  services.scheduler = nullptr;  // [scheduler]
  // [scheduler] Before the bus: its queued completions hold bus connections (PendingReply)
  // whose last release must find the bus service alive.
  policy_scheduler.reset();
  bus_service->reset();  // control plane
  if (*watchdog)
    for (HealthSource* h : (*nbd_server)->HealthSources()) (*watchdog)->RemoveSource(h);
  (*nbd_server)->Stop();                      // NBD server
  (*volumes)->set_attached_clients(nullptr);  // NBD server
  snapshot_exports.reset();                   // [exports] after the server, before the store
  // [restore] The wiring no longer calls the restore manager, then it stops hydrations.
  (*wiring)->set_volume_deleted_observer(nullptr);
  restore.reset();  // [restore] stops hydrations
  wiring->reset();
  snapshots->reset();
  volumes->reset();
  db->reset();
  spdlog::info("blocksnapd stopped");
  return r < 0 ? 1 : 0;
}

}  // namespace
}  // namespace blocksnap

int main(int argc, char** argv) {
  using namespace blocksnap;
  SetUpLogging();

  CLI::App app{"blocksnapd: block-device snapshot daemon serving volumes over NBD"};
  ConfigOverrides o;
  std::string config, data_dir, runtime_dir, policy_dir, control, unix_path, bus, log_level;
  std::vector<std::string> listen;
  unsigned io_threads = 0;
  auto* f_config = app.add_option("--config", config, "Config file (YAML)");
  auto* f_data = app.add_option("--data-dir", data_dir, "Data directory (RocksDB, volume images)");
  auto* f_runtime = app.add_option("--runtime-dir", runtime_dir, "Runtime directory (sockets)");
  auto* f_listen =
      app.add_option("--listen", listen, "NBD TCP address HOST:PORT (repeatable; 'none' = off)");
  auto* f_unix = app.add_option("--unix", unix_path, "NBD unix socket path ('none' = off)");
  auto* f_control = app.add_option("--control", control, "Private D-Bus control socket path");
  auto* f_policy = app.add_option("--policy-dir", policy_dir, "Directory of *.yaml policies");
  auto* f_bus = app.add_option("--bus", bus, "Message bus: auto, system, user or none")
                    ->check(CLI::IsMember({"auto", "system", "user", "none"}));
  auto* f_level = app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
                      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  auto* f_threads =
      app.add_option("--io-threads", io_threads, "NBD event loops (0 = two per core)");
  bool debug_no_tracking = false;
  app.add_flag("--debug-no-tracking", debug_no_tracking,
               "Benchmarks only: serve volumes without dirty tracking; snapshots are refused");
  std::string test_clock;  // [scheduler]
  app.add_option("--test-clock", test_clock,
                 "TESTS ONLY: the scheduler runs on a clock that starts at this RFC 3339 time "
                 "and moves only by org.blocksnap1.Testing.SetTime");  // [scheduler]
  app.set_version_flag("--version", std::string("blocksnapd 0.1.0"));
  CLI11_PARSE(app, argc, argv);

  auto set = [](CLI::Option* opt, auto& dst, const auto& value) {
    if (opt->count()) dst = value;
  };
  set(f_config, o.config_file, config);
  set(f_data, o.data_dir, data_dir);
  set(f_runtime, o.runtime_dir, runtime_dir);
  set(f_listen, o.listen, listen);
  set(f_unix, o.unix_path, unix_path);
  set(f_control, o.control_path, control);
  set(f_policy, o.policy_dir, policy_dir);
  set(f_bus, o.bus, bus);
  set(f_level, o.log_level, log_level);
  set(f_threads, o.io_threads, io_threads);
  std::optional<policy::TimePoint> test_start;  // [scheduler]
  if (!test_clock.empty()) {                    // [scheduler]
    policy::TimePoint t;
    if (!policy::ParseTimestamp(test_clock, &t)) {
      fprintf(stderr, "blocksnapd: --test-clock: '%s' is not an RFC 3339 time\n",
              test_clock.c_str());
      return 2;
    }
    test_start = t;
  }

  // Signals are handled by the event loop; block them before any thread starts so every
  // thread inherits the mask. SIGPIPE: a client closing mid-reply must not kill us.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);

  return Run(Environment::FromProcess(), o, test_start, debug_no_tracking);
}
