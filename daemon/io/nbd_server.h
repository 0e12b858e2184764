// NbdServer: serves every volume over NBD on io_uring event loops (two per core by default).
//
// Listens on TCP addresses, a unix socket and sockets inherited from systemd; loop 0
// accepts and hands each connection to a loop round-robin, which then owns its socket and
// its file I/O. Implements AttachedClients for the volume manager.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "io/write_hook.h"
#include "service/health_source.h"
#include "util/status.h"
#include "volume/volume_manager.h"

namespace blocksnap::io {
class EventLoop;
class LoopState;
class Acceptor;
class Connection;
class SnapshotExports;  // [exports]
}  // namespace blocksnap::io

namespace blocksnap {

struct NbdServerOptions {
  std::vector<std::string> listen;  // "HOST:PORT", "[::1]:PORT"
  std::string unix_path;            // "" = no unix socket
  std::vector<int> inherited_fds;   // listening sockets from systemd; the server owns them
  unsigned threads = 0;             // 0 = two per core
  size_t max_connections = 256;
  std::chrono::seconds handshake_timeout{10};
  // Writes up to this size are written inline on the loop thread (io/volume_export.h).
  uint64_t inline_write_max = 1 << 20;
  // The snapshot layer's per-volume write hook (io/write_hook.h); empty = none.
  io::WriteHookProvider write_hook;
  // [exports] Read-only exports of completed snapshots; nullptr = none. Outlives the server.
  io::SnapshotExports* snapshot_exports = nullptr;
};

class NbdServer : public AttachedClients {
 public:
  // Opens every listener (any failure is returned, nothing keeps running) and starts the
  // loops.
  static Result<std::unique_ptr<NbdServer>> Start(const NbdServerOptions& options,
                                                  VolumeManager& volumes);
  ~NbdServer() override;

  // Closes listeners, disconnects clients, joins the loops, unlinks the unix socket.
  // Idempotent.
  void Stop();

  // One heartbeat per event loop, beaten on the loop's once-a-second tick: the systemd
  // watchdog pings only while every loop makes progress.
  std::vector<HealthSource*> HealthSources();

  std::vector<ClientInfo> ListClients(uint64_t volume_id) override;
  size_t CountClients(uint64_t volume_id) override;
  // Not to be called from an io loop thread (it waits for the loops).
  void DisconnectClients(uint64_t volume_id) override;

  // Called by the loops.
  const std::atomic<size_t>& open_connections() const { return connections_; }
  bool AdmitConnection();  // false when max_connections are open
  void ConnectionGone();
  void Register(const io::Connection* c, uint64_t volume_id, ClientInfo info);
  void Unregister(const io::Connection* c);
  void HandOff(int fd, std::string peer, bool tcp);
  // When the loops stop draining and close what is left (set by Stop before any loop stops:
  // one deadline for all loops, although they are stopped one after another).
  std::chrono::steady_clock::time_point drain_deadline() const { return drain_deadline_; }

  explicit NbdServer(const NbdServerOptions& options);  // use Start()

 private:
  Status Listen();

  NbdServerOptions options_;
  std::vector<std::unique_ptr<io::EventLoop>> loops_;
  std::vector<std::unique_ptr<LoopHeartbeat>> heartbeats_;
  std::vector<std::unique_ptr<io::LoopState>> states_;
  std::vector<std::unique_ptr<io::Acceptor>> acceptors_;
  std::vector<std::unique_ptr<io::LoopState*>> state_refs_;
  std::atomic<size_t> next_loop_{0};
  std::atomic<size_t> connections_{0};
  // Loop 0 only: rate limit of the "refused" warning.
  std::chrono::steady_clock::time_point last_refusal_log_{};
  size_t refused_ = 0;
  std::atomic<bool> stopped_{false};
  std::chrono::steady_clock::time_point drain_deadline_{};
  bool unix_bound_ = false;

  struct Entry {
    uint64_t volume_id;
    ClientInfo info;
  };
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<const io::Connection*, Entry> attached_;
};

}  // namespace blocksnap
