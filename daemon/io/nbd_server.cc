#include "io/nbd_server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <optional>
#include <thread>
#include <unordered_map>

#include "io/connection.h"
#include "io/event_loop.h"
#include "io/listeners.h"
#include "io/volume_catalog.h"

namespace blocksnap {
namespace io {

// How long stopping waits for the connections to send the replies of the requests they have
// in flight (checked on each loop's tick, about once a second).
constexpr std::chrono::seconds kStopDrainTimeout{5};

// The connections of one loop; lives on (and is only touched from) that loop's thread.
class LoopState final : public ConnectionHost {
 public:
  LoopState(NbdServer& server, EventLoop& loop, VolumeManager& volumes,
            const NbdServerOptions& options)
      : server_(server),
        loop_(loop),
        catalog_(volumes, loop, options.write_hook, options.inline_write_max,
                 &server.open_connections(), options.snapshot_exports),  // [exports]
        handshake_timeout_(options.handshake_timeout) {}

  nbd::ExportCatalog& catalog() noexcept override { return catalog_; }

  void Add(UniqueFd fd, std::string peer) {
    if (loop_.stopping()) {
      // Accepted just before the stop reached this loop: nobody would close it.
      server_.ConnectionGone();
      return;
    }
    auto c = std::make_unique<Connection>(*this, loop_, std::move(fd), std::move(peer),
                                          Connection::Clock::now() + handshake_timeout_);
    Connection* raw = c.get();
    conns_.emplace(raw, std::move(c));
    spdlog::debug("nbd: connection from {}", raw->peer());
    raw->Start();
  }

  void Attached(Connection& c) noexcept override {
    spdlog::info("nbd: client {} attached to '{}'", c.peer(), c.export_name());
    server_.Register(&c, c.volume_id(),
                     ClientInfo{c.peer(), c.export_name(), std::chrono::system_clock::now()});
  }

  void Finished(Connection& c) noexcept override {
    if (c.attached()) {
      spdlog::info("nbd: client {} of '{}' disconnected: {}", c.peer(), c.export_name(),
                   c.close_reason());
      server_.Unregister(&c);
    } else {
      spdlog::info("nbd: connection from {} closed during handshake: {}", c.peer(),
                   c.close_reason());
    }
    server_.ConnectionGone();
    // Destroy later: we are inside one of the connection's own callbacks.
    Connection* raw = &c;
    loop_.Post([this, raw] { conns_.erase(raw); });
  }

  void Tick() noexcept {
    auto now = Connection::Clock::now();
    for (auto& [raw, c] : conns_) c->OnTick(now);
    if (stop_deadline_ && now >= *stop_deadline_) {
      stop_deadline_.reset();
      for (auto& [raw, c] : conns_) c->Close("server stopping: replies not drained in time");
    }
  }

  // The server stops: every connection finishes the requests it has in flight and sends
  // their replies, then closes; whatever is left at the deadline is closed hard.
  void CloseAll(const std::string& why) noexcept {
    stop_deadline_ = server_.drain_deadline();
    for (auto& [raw, c] : conns_) c->Drain(why);
  }

  void CloseVolume(uint64_t volume_id) noexcept {
    for (auto& [raw, c] : conns_) {
      if (c->attached() && c->volume_id() == volume_id) c->Close("disconnected by the server");
    }
  }

  bool empty() const { return conns_.empty(); }

 private:
  NbdServer& server_;
  EventLoop& loop_;
  VolumeCatalog catalog_;
  std::chrono::seconds handshake_timeout_;
  std::unordered_map<Connection*, std::unique_ptr<Connection>> conns_;
  std::optional<Connection::Clock::time_point> stop_deadline_;  // set by CloseAll
};

// One listening socket, accepted on loop 0.
class Acceptor final : public IoOp {
 public:
  Acceptor(NbdServer& server, EventLoop& loop, UniqueFd fd, std::string what)
      : server_(server), loop_(loop), fd_(std::move(fd)), what_(std::move(what)) {}

  void Arm() noexcept {
    if (inflight_ || stopping_) return;
    io_uring_sqe* sqe = loop_.ring().Sqe(this);
    if (!sqe) return;  // retried on the next tick
    len_ = sizeof addr_;
    io_uring_prep_accept(sqe, fd_.get(), reinterpret_cast<sockaddr*>(&addr_), &len_, SOCK_CLOEXEC);
    inflight_ = true;
  }

  void Cancel() noexcept {
    stopping_ = true;
    if (!inflight_) return;
    if (io_uring_sqe* sqe = loop_.ring().Sqe(nullptr)) io_uring_prep_cancel(sqe, this, 0);
  }

  void OnCqe(int res) noexcept override {
    inflight_ = false;
    if (stopping_) {
      if (res >= 0) ::close(res);
      return;
    }
    if (res >= 0) {
      std::string peer = FormatPeer(addr_, len_);
      server_.HandOff(res, std::move(peer), addr_.ss_family != AF_UNIX);
      return Arm();
    }
    if (res == -EINTR || res == -EAGAIN || res == -ECONNABORTED) return Arm();
    // EMFILE and friends: try again on the next tick rather than spin.
    spdlog::warn("nbd: accepting on {} failed: {}", what_, std::strerror(-res));
  }

  bool inflight() const { return inflight_; }

 private:
  NbdServer& server_;
  EventLoop& loop_;
  UniqueFd fd_;
  std::string what_;
  sockaddr_storage addr_{};
  socklen_t len_ = 0;
  bool inflight_ = false;
  bool stopping_ = false;
};

}  // namespace io

NbdServer::NbdServer(const NbdServerOptions& options) : options_(options) {}

NbdServer::~NbdServer() {
  Stop();
}

Status NbdServer::Listen() {
  io::EventLoop& loop0 = *loops_[0];
  for (const std::string& spec : options_.listen) {
    BS_ASSIGN_OR_RETURN(UniqueFd fd, io::ListenTcp(spec));
    acceptors_.push_back(std::make_unique<io::Acceptor>(*this, loop0, std::move(fd), spec));
    spdlog::info("nbd: listening on {}", spec);
  }
  if (!options_.unix_path.empty()) {
    BS_ASSIGN_OR_RETURN(UniqueFd fd, io::ListenUnix(options_.unix_path));
    unix_bound_ = true;  // ours to unlink on Stop()
    acceptors_.push_back(
        std::make_unique<io::Acceptor>(*this, loop0, std::move(fd), options_.unix_path));
    spdlog::info("nbd: listening on {}", options_.unix_path);
  }
  for (int fd : options_.inherited_fds) {
    acceptors_.push_back(std::make_unique<io::Acceptor>(*this, loop0, UniqueFd(fd),
                                                        "inherited fd " + std::to_string(fd)));
    spdlog::info("nbd: listening on inherited fd {}", fd);
  }
  return Status::Ok();
}

Result<std::unique_ptr<NbdServer>> NbdServer::Start(const NbdServerOptions& options,
                                                    VolumeManager& volumes) {
  auto server = std::make_unique<NbdServer>(options);
  // Two loops per core by default: a loop thread blocks in the kernel now and then (a
  // buffered write waiting for the image's inode lock held by another loop, dirty-page
  // throttling), and every connection it serves waits with it. With four connections on two
  // cores, one loop each: 4k random writes +25%, 1M sequential +4-10% (tmpfs, issue 8).
  unsigned n =
      options.threads ? options.threads : 2 * std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < n; ++i) {
    auto state_slot = std::make_unique<io::LoopState*>(nullptr);
    io::LoopState** state_ref = state_slot.get();
    NbdServer* self = server.get();
    // A loop ticks about once a second; ten missed ticks means it is stuck.
    server->heartbeats_.push_back(std::make_unique<LoopHeartbeat>(std::chrono::seconds(10)));
    LoopHeartbeat* heartbeat = server->heartbeats_.back().get();
    io::EventLoop::Hooks hooks;
    hooks.on_tick = [state_ref, self, i, heartbeat] {
      heartbeat->Beat();
      (*state_ref)->Tick();
      if (i == 0) {
        for (auto& a : self->acceptors_) a->Arm();
      }
    };
    hooks.on_stop = [state_ref, self, i] {
      if (i == 0) {
        for (auto& a : self->acceptors_) a->Cancel();
      }
      (*state_ref)->CloseAll("server stopping");
    };
    hooks.idle = [state_ref, self, i] {
      if (i == 0) {
        for (auto& a : self->acceptors_) {
          if (a->inflight()) return false;
        }
      }
      return (*state_ref)->empty();
    };
    BS_ASSIGN_OR_RETURN(auto loop, io::EventLoop::Create(i, std::move(hooks)));
    auto state = std::make_unique<io::LoopState>(*server, *loop, volumes, options);
    *state_ref = state.get();
    server->loops_.push_back(std::move(loop));
    server->states_.push_back(std::move(state));
    // The hooks keep a pointer to the state pointer; keep it alive with the server.
    server->state_refs_.push_back(std::move(state_slot));
  }
  if (Status st = server->Listen(); !st.ok()) return st;
  for (auto& loop : server->loops_) loop->Start();
  io::EventLoop& loop0 = *server->loops_[0];
  NbdServer* self = server.get();
  loop0.Post([self] {
    for (auto& a : self->acceptors_) a->Arm();
  });
  spdlog::info("nbd: serving with {} io loop(s), at most {} connections", n,
               options.max_connections);
  return server;
}

void NbdServer::Stop() {
  if (stopped_.exchange(true)) return;
  drain_deadline_ = std::chrono::steady_clock::now() + io::kStopDrainTimeout;
  // Loop 0 first: once it stopped accepting, no handoff can reach a stopped loop.
  for (auto& loop : loops_) loop->StopAndJoin();
  acceptors_.clear();
  if (unix_bound_) ::unlink(options_.unix_path.c_str());
  spdlog::info("nbd: server stopped");
}

bool NbdServer::AdmitConnection() {
  size_t n = connections_.fetch_add(1);
  if (n < options_.max_connections) return true;
  connections_.fetch_sub(1);
  return false;
}

void NbdServer::ConnectionGone() {
  connections_.fetch_sub(1);
}

void NbdServer::HandOff(int fd, std::string peer, bool tcp) {
  UniqueFd owned(fd);
  if (!AdmitConnection()) {
    // At most one line a second: a flood of connections must not flood the journal.
    auto now = std::chrono::steady_clock::now();
    ++refused_;
    if (now - last_refusal_log_ >= std::chrono::seconds(1)) {
      spdlog::warn("nbd: refused {} connection(s) (latest from {}): {} already open", refused_,
                   peer, options_.max_connections);
      refused_ = 0;
      last_refusal_log_ = now;
    }
    return;
  }
  if (tcp) {
    int one = 1;
    // Replies are sent as soon as they are complete; batching is done by gathering.
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // A client host that vanishes without a FIN must not hold its slot forever.
    ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  }
  size_t i = next_loop_.fetch_add(1) % loops_.size();
  io::LoopState* state = states_[i].get();
  int raw = owned.release();
  loops_[i]->Post([state, raw, peer = std::move(peer)]() mutable {
    state->Add(UniqueFd(raw), std::move(peer));
  });
}

void NbdServer::Register(const io::Connection* c, uint64_t volume_id, ClientInfo info) {
  std::lock_guard lock(mu_);
  attached_[c] = Entry{volume_id, std::move(info)};
}

void NbdServer::Unregister(const io::Connection* c) {
  {
    std::lock_guard lock(mu_);
    attached_.erase(c);
  }
  cv_.notify_all();
}

std::vector<HealthSource*> NbdServer::HealthSources() {
  std::vector<HealthSource*> out;
  for (auto& h : heartbeats_) out.push_back(h.get());
  return out;
}

std::vector<ClientInfo> NbdServer::ListClients(uint64_t volume_id) {
  std::lock_guard lock(mu_);
  std::vector<ClientInfo> out;
  for (const auto& [c, e] : attached_) {
    if (e.volume_id == volume_id) out.push_back(e.info);
  }
  return out;
}

size_t NbdServer::CountClients(uint64_t volume_id) {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& [c, e] : attached_) n += e.volume_id == volume_id;
  return n;
}

void NbdServer::DisconnectClients(uint64_t volume_id) {
  if (stopped_) return;
  for (size_t i = 0; i < loops_.size(); ++i) {
    io::LoopState* state = states_[i].get();
    loops_[i]->Post([state, volume_id] { state->CloseVolume(volume_id); });
  }
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] {
    for (const auto& [c, e] : attached_) {
      if (e.volume_id == volume_id) return false;
    }
    return true;
  });
}

}  // namespace blocksnap
