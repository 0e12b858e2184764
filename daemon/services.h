// Services: the daemon's parts, wired by main.cc and handed to the control plane.
// Pointers are non-owning; main.cc owns every part and outlives the users of this struct.
// A part that is not running is nullptr (e.g. no NBD server in a unit test).
#pragma once

#include <functional>

#include "util/status.h"

namespace blocksnap {

class Db;
class VolumeManager;
class AttachedClients;
class SnapshotManager;
class RestoreManager;  // [restore]
namespace scheduler {
class Scheduler;
}  // namespace scheduler

struct Services {
  Db* db = nullptr;
  VolumeManager* volumes = nullptr;
  AttachedClients* clients = nullptr;  // the NBD server
  SnapshotManager* snapshots = nullptr;
  RestoreManager* restore = nullptr;          // [restore] volumes from snapshots
  scheduler::Scheduler* scheduler = nullptr;  // the policy scheduler (daemon/scheduler)
  // Re-reads the config file and the policies (SIGHUP, `policy reload`).
  std::function<Status()> reload;
};

}  // namespace blocksnap
