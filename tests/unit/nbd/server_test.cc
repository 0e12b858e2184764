// NbdServer in-process, driven through libnbd's C API and raw sockets: the handshake
// timeout, handshake replies that pile up behind a stalled send, the connection cap, the
// write-hook seam (deferred from another thread, failing), and 64 aio requests in flight.
#include "io/nbd_server.h"

#include "io/event_loop.h"
#include "io/listeners.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <libnbd.h>
#include <linux/magic.h>
#include <malloc.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "nbd/wire.h"
#include "store/db.h"
#include "test_util.h"
#include "volume/volume_manager.h"

namespace blocksnap {
namespace {

constexpr uint64_t kSize = 16 << 20;

// A write hook that records every range and can defer (resumed from a helper thread) or
// fail.
class TestHook final : public io::VolumeWriteHook {
 public:
  ~TestHook() override {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    if (helper_.joinable()) helper_.join();
  }
  int BeforeRead(uint64_t offset, uint64_t length, io::HookWaiter& waiter) noexcept override {
    {
      std::lock_guard lock(mu_);
      if (!hook_reads_) return io::kHookReady;
    }
    return BeforeWrite(offset, length, waiter);
  }
  int BeforeWrite(uint64_t offset, uint64_t length, io::HookWaiter& waiter) noexcept override {
    std::lock_guard lock(mu_);
    ranges_.push_back({offset, length});
    if (fail_) return fail_;
    if (!defer_) return io::kHookReady;
    if (!helper_.joinable()) helper_ = std::thread([this] { Helper(); });
    pending_.push_back(&waiter);
    cv_.notify_all();
    return io::kHookDeferred;
  }
  void set_defer(bool d, int proceed_with = 0) {
    std::lock_guard lock(mu_);
    defer_ = d;
    proceed_with_ = proceed_with;
  }
  void set_hook_reads(bool r) {
    std::lock_guard lock(mu_);
    hook_reads_ = r;
  }
  void set_fail(int f) {
    std::lock_guard lock(mu_);
    fail_ = f;
  }
  std::vector<std::pair<uint64_t, uint64_t>> TakeRanges() {
    std::lock_guard lock(mu_);
    return std::exchange(ranges_, {});
  }

 private:
  // Resumes deferred writes from another thread, as a group-commit thread would.
  void Helper() {
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return done_ || !pending_.empty(); });
      if (pending_.empty()) return;
      auto waiters = std::exchange(pending_, {});
      int res = proceed_with_;
      lock.unlock();
      for (auto* w : waiters) w->Proceed(res);
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<uint64_t, uint64_t>> ranges_;
  std::vector<io::HookWaiter*> pending_;
  bool defer_ = false, done_ = false, hook_reads_ = false;
  int fail_ = 0, proceed_with_ = 0;
  std::thread helper_;
};

class ServerTest : public ::testing::Test {
 protected:
  // Where the data dir (RocksDB and the volume file) is created.
  virtual std::string BaseDir() const { return "/tmp"; }
  void SetUp() override {
    std::string tmpl = BaseDir() + "/nbd_server_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << BaseDir();
    dir_ = tmpl;
    auto db = Db::Open(dir_ + "/db");
    ASSERT_TRUE(db.ok()) << db.status().message();
    db_ = std::move(*db);
    auto vm = VolumeManager::Open(*db_, dir_);
    ASSERT_TRUE(vm.ok()) << vm.status().message();
    volumes_ = std::move(*vm);
    CreateVolumeRequest req;
    req.name = "v";
    req.size = kSize;
    ASSERT_TRUE(volumes_->Create(req).ok());
    options_.unix_path = dir_ + "/nbd.sock";
    options_.threads = 2;
  }
  void TearDown() override {
    if (server_) server_->Stop();
    for (auto* h : handles_) nbd_close(h);
    for (int fd : raw_) ::close(fd);
    server_.reset();
    volumes_.reset();
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Start() {
    auto s = NbdServer::Start(options_, *volumes_);
    ASSERT_TRUE(s.ok()) << s.status().message();
    server_ = std::move(*s);
  }
  nbd_handle* Connect() {
    nbd_handle* h = nbd_create();
    handles_.push_back(h);
    EXPECT_EQ(nbd_set_export_name(h, "v"), 0);
    EXPECT_EQ(nbd_connect_unix(h, options_.unix_path.c_str()), 0) << nbd_get_error();
    return h;
  }
  // A raw unix socket that has read the server's 18-byte greeting (or EOF).
  int RawConnect(bool expect_greeting = true) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, options_.unix_path.c_str());
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    timeval guard{60, 0};  // fails the test instead of hanging if the server misbehaves
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof guard);
    if (expect_greeting) {
      char greeting[18];
      EXPECT_EQ(::recv(fd, greeting, sizeof greeting, MSG_WAITALL), 18);
    }
    raw_.push_back(fd);
    return fd;
  }
  // "eof" once the server has closed the connection; otherwise what recv saw instead, so a
  // failure says whether bytes arrived or which error ended the wait.
  static std::string RecvUntilEof(int fd) {
    char b[64];
    for (;;) {
      ssize_t n = ::recv(fd, b, sizeof b, 0);
      if (n == 0) return "eof";
      if (n > 0) return std::to_string(n) + " unexpected byte(s)";
      if (errno != EINTR) return std::string("recv: ") + std::strerror(errno);
    }
  }

  std::string dir_;
  std::unique_ptr<Db> db_;
  std::unique_ptr<VolumeManager> volumes_;
  NbdServerOptions options_;
  std::unique_ptr<NbdServer> server_;
  std::vector<nbd_handle*> handles_;
  std::vector<int> raw_;
};

// Deferred work runs once per batch however often it is deferred, and not when cancelled.
TEST(EventLoopTest, DeferRunsOnceAndCancelWins) {
  struct Counter final : io::Deferred {
    int runs = 0;
    void RunDeferred() noexcept override { ++runs; }
  };
  auto loop = io::EventLoop::Create(0, {});
  ASSERT_TRUE(loop.ok());
  (*loop)->Start();
  Counter twice, cancelled;
  std::promise<void> deferred, checked;
  (*loop)->Post([&] {
    (*loop)->Defer(&twice);
    (*loop)->Defer(&twice);
    (*loop)->Defer(&cancelled);
    (*loop)->CancelDeferred(&cancelled);
    deferred.set_value();
  });
  deferred.get_future().wait();
  // Tasks run in order, each batch's deferred work before the next batch: by the time this
  // task runs, the first batch's deferred work has run.
  (*loop)->Post([&] { checked.set_value(); });
  checked.get_future().wait();
  (*loop)->StopAndJoin();
  EXPECT_EQ(twice.runs, 1);
  EXPECT_EQ(cancelled.runs, 0);
}

TEST(Listeners, SplitHostPort) {
  auto ok = [](const std::string& spec, const std::string& host, const std::string& port) {
    auto r = io::SplitHostPort(spec);
    ASSERT_TRUE(r.ok()) << spec << ": " << r.status().message();
    EXPECT_EQ(r->first, host) << spec;
    EXPECT_EQ(r->second, port) << spec;
  };
  ok("127.0.0.1:10809", "127.0.0.1", "10809");
  ok("[::1]:10809", "::1", "10809");
  ok("[fe80::1%lo]:1", "fe80::1%lo", "1");
  ok("localhost:0", "localhost", "0");
  ok(":10809", "", "10809");  // any address
  for (const char* bad : {"10809", "[::1]10809", "[::1", "host:", "host:port", "[::1]:x1"}) {
    EXPECT_FALSE(io::SplitHostPort(bad).ok()) << bad;
  }
}

TEST(Listeners, UnixSocketReplacesOnlyStaleSockets) {
  char tmpl[] = "/tmp/nbd_listen_test.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl, path = dir + "/s.sock", file = dir + "/plain";
  {
    auto first = io::ListenUnix(path);
    ASSERT_TRUE(first.ok()) << first.status().message();
  }
  // The socket file of a previous run is still there; it is replaced.
  auto second = io::ListenUnix(path);
  EXPECT_TRUE(second.ok()) << second.status().message();
  // A regular file is never removed.
  {
    std::FILE* f = std::fopen(file.c_str(), "w");
    std::fclose(f);
  }
  EXPECT_FALSE(io::ListenUnix(file).ok());
  EXPECT_TRUE(std::filesystem::exists(file));
  std::filesystem::remove_all(dir);
}

TEST_F(ServerTest, StalledHandshakeIsDropped) {
  options_.handshake_timeout = std::chrono::seconds(1);
  Start();
  int fd = RawConnect();
  EXPECT_EQ(RecvUntilEof(fd), "eof");  // never sent the client flags
  // An attached client is not subject to the timeout.
  nbd_handle* h = Connect();
  std::vector<char> buf(512);
  EXPECT_EQ(nbd_pread(h, buf.data(), buf.size(), 0, 0), 0);
}

TEST_F(ServerTest, ConnectionCap) {
  options_.max_connections = 2;
  Start();
  RawConnect();
  RawConnect();
  int third = RawConnect(/*expect_greeting=*/false);
  EXPECT_EQ(RecvUntilEof(third), "eof");
}

// A client that sends option after option without reading the replies: the server's send
// stalls on the full socket while it goes on answering, so its handshake output grows under
// a send in flight. Every reply must still arrive, byte for byte.
TEST_F(ServerTest, HandshakeRepliesSurviveAStalledSend) {
  // Freed heap memory is overwritten at once, so bytes sent from a stale buffer show.
  ::mallopt(M_PERTURB, 0x5a);
  Start();
  int fd = RawConnect();
  const uint32_t flags = htonl(nbd::kClientFixedNewstyle | nbd::kClientNoZeroes);
  ASSERT_EQ(::send(fd, &flags, sizeof flags, 0), ssize_t(sizeof flags));
  // 40-byte replies: 800 KB in all, below the 1 MiB at which the server stops reading
  // options, and far more than the socket holds.
  constexpr int kOptions = 20000;
  std::string options;
  for (int i = 0; i < kOptions; ++i) options += nbd::testing::Wire().opt(1000 + i % 50);
  ASSERT_EQ(::send(fd, options.data(), options.size(), MSG_WAITALL), ssize_t(options.size()));
  std::string expected;
  for (int i = 0; i < kOptions; ++i) {
    expected += nbd::testing::Wire().rep(1000 + i % 50, nbd::kRepErrUnsup, "option not supported");
  }
  std::string got(expected.size(), '\0');
  ASSERT_EQ(::recv(fd, got.data(), got.size(), MSG_WAITALL), ssize_t(got.size()));
  EXPECT_TRUE(got == expected) << "first difference at byte "
                               << std::mismatch(got.begin(), got.end(), expected.begin()).first -
                                      got.begin();
  ::mallopt(M_PERTURB, 0);
}

TEST_F(ServerTest, WriteHookSeesEveryMutationAndMayDefer) {
  auto hook = std::make_shared<TestHook>();
  options_.write_hook = [hook](const Volume&) { return hook; };
  Start();
  nbd_handle* h = Connect();
  std::vector<char> data(4096, 'h'), back(4096);

  ASSERT_EQ(nbd_pwrite(h, data.data(), data.size(), 8192, 0), 0);
  ASSERT_EQ(nbd_trim(h, 4096, 65536, 0), 0);
  ASSERT_EQ(nbd_zero(h, 4096, 1 << 20, LIBNBD_CMD_FLAG_NO_HOLE), 0);
  ASSERT_EQ(nbd_pread(h, back.data(), back.size(), 8192, 0), 0);  // reads pass no hook
  using R = std::vector<std::pair<uint64_t, uint64_t>>;
  EXPECT_EQ(hook->TakeRanges(), (R{{8192, 4096}, {65536, 4096}, {1 << 20, 4096}}));

  // Deferred: the write waits for Proceed() from the helper thread, then lands.
  hook->set_defer(true);
  std::fill(data.begin(), data.end(), 'd');
  ASSERT_EQ(nbd_pwrite(h, data.data(), data.size(), 0, LIBNBD_CMD_FLAG_FUA), 0);
  ASSERT_EQ(nbd_pread(h, back.data(), back.size(), 0, 0), 0);
  EXPECT_EQ(back, data);

  // Proceed with an error: the request fails with it, nothing is written.
  hook->set_defer(true, -ENOSPC);
  std::vector<char> other(4096, 'x');
  EXPECT_EQ(nbd_pwrite(h, other.data(), other.size(), 0, 0), -1);
  EXPECT_EQ(nbd_get_errno(), ENOSPC);
  ASSERT_EQ(nbd_pread(h, back.data(), back.size(), 0, 0), 0);
  EXPECT_EQ(back, data);

  // Reads pass BeforeRead (restore's seam): deferred, then served from the file.
  hook->TakeRanges();
  hook->set_defer(true);
  hook->set_hook_reads(true);
  std::fill(back.begin(), back.end(), 0);
  ASSERT_EQ(nbd_pread(h, back.data(), back.size(), 0, 0), 0);
  EXPECT_EQ(back, data);
  EXPECT_EQ(hook->TakeRanges(), (R{{0, 4096}}));
  hook->set_hook_reads(false);

  // Refused at once.
  hook->set_defer(false);
  hook->set_fail(-EIO);
  EXPECT_EQ(nbd_zero(h, 4096, 0, 0), -1);
  EXPECT_EQ(nbd_get_errno(), EIO);
}

// A write hook that holds every write until Release().
class GateHook final : public io::VolumeWriteHook {
 public:
  int BeforeWrite(uint64_t, uint64_t, io::HookWaiter& waiter) noexcept override {
    std::lock_guard lock(mu_);
    held_.push_back(&waiter);
    cv_.notify_all();
    return io::kHookDeferred;
  }
  void WaitHeld(size_t n) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return held_.size() >= n; });
  }
  void Release() {
    std::vector<io::HookWaiter*> held;
    {
      std::lock_guard lock(mu_);
      held.swap(held_);
    }
    for (auto* w : held) w->Proceed(0);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<io::HookWaiter*> held_;
};

// The spec: a server that stops SHOULD complete the requests in flight before it
// disconnects. A write still waiting in the hook when the stop reaches its loop is completed
// and its reply sent; only then does the connection close.
TEST_F(ServerTest, StopSendsTheRepliesOfRequestsInFlight) {
  auto hook = std::make_shared<GateHook>();
  options_.write_hook = [hook](const Volume&) { return hook; };
  options_.threads = 1;  // the client and the handshake connection below share the loop
  Start();
  nbd_handle* h = Connect();
  std::vector<char> data(4096, 's');
  int64_t cookie = nbd_aio_pwrite(h, data.data(), data.size(), 0, nbd_completion_callback{}, 0);
  ASSERT_GT(cookie, 0) << nbd_get_error();
  hook->WaitHeld(1);
  int in_handshake = RawConnect();
  std::thread stopper([&] { server_->Stop(); });
  // A connection still in its handshake is closed at once: once it sees EOF, the stop has
  // reached the loop, with the write still held.
  EXPECT_EQ(RecvUntilEof(in_handshake), "eof");
  hook->Release();
  int done = 0;
  while ((done = nbd_aio_command_completed(h, cookie)) == 0) {
    if (nbd_poll(h, -1) == -1) break;
  }
  EXPECT_EQ(done, 1) << nbd_get_error();
  stopper.join();
  // The reply was the last thing: the server closed the connection after it.
  std::vector<char> back(4096);
  EXPECT_EQ(nbd_pread(h, back.data(), back.size(), 0, 0), -1);
}

// 64 writes in flight, then 64 reads, on both write paths: writes of at most
// inline_write_max bytes without FUA are written inline on the loop, the others (bigger or
// FUA) go through io_uring. The reads cover never-written holes too.
void WriteAndReadBack64InFlight(nbd_handle* h) {
  std::mt19937 rng(7);
  std::vector<std::vector<char>> blocks;
  for (size_t i = 0; i < 64; ++i) blocks.emplace_back(i % 4 == 1 ? 131072 : 65536);
  for (auto& b : blocks) {
    for (auto& c : b) c = char(rng());
  }
  nbd_completion_callback none{};
  for (size_t i = 0; i < blocks.size(); ++i) {
    uint32_t flags = i % 4 == 2 ? LIBNBD_CMD_FLAG_FUA : 0;
    ASSERT_GT(nbd_aio_pwrite(h, blocks[i].data(), blocks[i].size(), i * 131072, none, flags), 0);
  }
  EXPECT_EQ(nbd_aio_in_flight(h), 64);
  while (nbd_aio_in_flight(h) > 0) ASSERT_GE(nbd_poll(h, -1), 0);
  std::vector<std::vector<char>> back;
  for (const auto& b : blocks) back.emplace_back(b.size());
  for (size_t i = 0; i < back.size(); ++i) {
    ASSERT_GT(nbd_aio_pread(h, back[i].data(), back[i].size(), i * 131072, none, 0), 0);
  }
  EXPECT_EQ(nbd_aio_in_flight(h), 64);
  while (nbd_aio_in_flight(h) > 0) ASSERT_GE(nbd_poll(h, -1), 0);
  EXPECT_EQ(back, blocks);
  EXPECT_EQ(nbd_flush(h, 0), 0);
  std::vector<char> hole(65536, 'x');
  ASSERT_EQ(nbd_pread(h, hole.data(), hole.size(), 65536, 0), 0);  // between two blocks
  EXPECT_EQ(hole, std::vector<char>(65536, 0));
}

TEST_F(ServerTest, SixtyFourAioInFlightVerified) {
  options_.inline_write_max = 65536;
  Start();
  WriteAndReadBack64InFlight(Connect());
}

// The volume on tmpfs, which cannot read without blocking (RWF_NOWAIT): reads are a pread
// on the loop thread there, instead of the ring (io/volume_export.cc).
class TmpfsServerTest : public ServerTest {
 protected:
  std::string BaseDir() const override { return "/dev/shm"; }
};

TEST_F(TmpfsServerTest, SixtyFourAioInFlightVerified) {
  struct statfs fs {};
  ASSERT_EQ(::statfs(dir_.c_str(), &fs), 0);
  if (fs.f_type != TMPFS_MAGIC) GTEST_SKIP() << "/dev/shm is not a tmpfs here";
  options_.inline_write_max = 65536;
  Start();
  WriteAndReadBack64InFlight(Connect());
}

}  // namespace
}  // namespace blocksnap
