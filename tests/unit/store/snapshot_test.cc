#include <sys/stat.h>
#include <condition_variable>
#include <csignal>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <utility>

#include <thread>

#include <nlohmann/json.hpp>

#include "../../tools/damage_chunk.h"
#include "test_util.h"
#include "volume/dirty_state.h"

namespace blocksnap::test {
namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kChunk = 64 * 1024;

class SnapshotTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    OpenManager();
  }
  // Lets the job of a snapshot started with hold_sweep finish; its record, once completed.
  SnapshotRecord ReleaseHeld(const Volume& v, const std::string& id) {
    auto vt = mgr_->Tracking(v.id());
    EXPECT_TRUE(vt.ok());
    if (!vt.ok() || (*vt)->current_job() == nullptr) return {};
    (*vt)->current_job()->Release();
    auto done = mgr_->Wait(id);
    EXPECT_TRUE(done.ok());
    if (!done.ok()) return {};
    EXPECT_EQ(done->state, "completed") << done->error;
    return *done;
  }
};

TEST_F(SnapshotTest, FirstSnapshotStoresOnlyWrittenChunks) {
  auto v = AttachNew(1, 16 * kMiB, kChunk);
  WritePattern(*v, 0, 1);
  WritePattern(*v, 100, 1);
  WritePattern(*v, 255, 1);
  auto s = Snap(*v, {{"k", "v"}});
  EXPECT_EQ(s.chunks, 3u);
  EXPECT_EQ(s.added_bytes, 3 * kChunk);
  EXPECT_EQ(s.chunks_total, 3u);
  EXPECT_EQ(s.chunks_done, 3u);
  EXPECT_EQ(s.bytes_total, 3 * kChunk);
  EXPECT_EQ(s.size, 16 * kMiB);
  EXPECT_EQ(s.tags.at("k"), "v");
  EXPECT_EQ(StoredChunks(), 3u);
  EXPECT_EQ(Dump(s), Image(*v));
  // The dump is sparse: only the 3 chunks are allocated.
  std::string path = (dir_ / "sparse.raw").string();
  ASSERT_TRUE(DumpTo(s.IdString(), path).ok());
  struct stat sb {};
  ASSERT_EQ(::stat(path.c_str(), &sb), 0);
  EXPECT_EQ(static_cast<uint64_t>(sb.st_size), 16 * kMiB);
  EXPECT_LE(static_cast<uint64_t>(sb.st_blocks) * 512, 3 * kChunk + 64 * 1024);
  auto st = mgr_->Stats();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->chunks, 3u);
  EXPECT_EQ(st->stored_bytes, 3 * kChunk);
  EXPECT_EQ(st->referenced_bytes, 3 * kChunk);
  ExpectConsistent();
}

// Dump writes to whatever fd it is given: a file's old contents are replaced (holes stay
// zeros), an O_APPEND file and a pipe get every byte in order, a read-only fd is refused.
TEST_F(SnapshotTest, DumpToFds) {
  auto v = AttachNew(1, 4 * kMiB, kChunk);
  WritePattern(*v, 1, 1);
  WritePattern(*v, 5, 2);
  auto s = Snap(*v);
  const std::string image = Image(*v);
  ASSERT_EQ(image.size(), 4 * kMiB);

  // An existing, larger file full of 0xff: the dump is exactly the image (no stale bytes).
  std::string path = (dir_ / "old.raw").string();
  {
    std::ofstream f(path, std::ios::binary);
    f << std::string(6 * kMiB, '\xff');
  }
  ASSERT_TRUE(DumpTo(s.IdString(), path, 0).ok());
  EXPECT_EQ(ReadFile(path), image);

  // O_APPEND: written as a stream after what is there.
  std::string appended = (dir_ / "append.raw").string();
  {
    std::ofstream f(appended, std::ios::binary);
    f << "head";
  }
  ASSERT_TRUE(DumpTo(s.IdString(), appended, O_APPEND).ok());
  EXPECT_EQ(ReadFile(appended), "head" + image);

  // A pipe, drained by another thread while the dump blocks on it.
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  std::string piped;
  std::thread reader([&] {
    char buf[65536];
    ssize_t n;
    while ((n = ::read(p[0], buf, sizeof buf)) > 0) piped.append(buf, static_cast<size_t>(n));
  });
  Status st = mgr_->Dump(s.IdString(), p[1]);
  ::close(p[1]);
  reader.join();
  ::close(p[0]);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(piped, image);

  // A pipe whose reader is gone: EPIPE (SIGPIPE is ignored here as in the daemon).
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  ::close(p[0]);
  auto old = ::signal(SIGPIPE, SIG_IGN);
  st = mgr_->Dump(s.IdString(), p[1]);
  ::signal(SIGPIPE, old);
  ::close(p[1]);
  EXPECT_EQ(st.code(), Code::kIOError) << st.message();
  EXPECT_NE(st.message().find("Broken pipe"), std::string::npos) << st.message();

  // Not open for writing: refused, the file untouched.
  int ro = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(ro, 0);
  st = mgr_->Dump(s.IdString(), ro);
  ::close(ro);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("not open for writing"), std::string::npos) << st.message();
  int opath = ::open(path.c_str(), O_PATH | O_CLOEXEC);
  ASSERT_GE(opath, 0);
  EXPECT_EQ(mgr_->Dump(s.IdString(), opath).code(), Code::kInvalidArgument);
  ::close(opath);
  EXPECT_EQ(ReadFile(path), image);
}

TEST_F(SnapshotTest, IncrementalStoresOnlyChangedChunks) {
  auto v = AttachNew(1, 16 * kMiB, kChunk);
  for (uint64_t c = 0; c < 20; ++c) WritePattern(*v, c, 1);
  auto s1 = Snap(*v);
  EXPECT_EQ(StoredChunks(), 20u);
  std::string img1 = Image(*v);
  for (uint64_t c : {3, 7, 19, 200, 201}) WritePattern(*v, c, 2);
  auto s2 = Snap(*v);
  EXPECT_EQ(s2.chunks, 5u);
  EXPECT_EQ(s2.added_bytes, 5 * kChunk);
  EXPECT_EQ(StoredChunks(), 25u);
  // Nothing written since: an empty incremental.
  auto s3 = Snap(*v);
  EXPECT_EQ(s3.chunks, 0u);
  EXPECT_EQ(s3.added_bytes, 0u);
  EXPECT_EQ(StoredChunks(), 25u);
  EXPECT_EQ(Dump(s1), img1);
  EXPECT_EQ(Dump(s2), Image(*v));
  EXPECT_EQ(Dump(s3), Image(*v));
  auto diff = mgr_->Diff(s1.IdString(), s2.IdString());
  ASSERT_TRUE(diff.ok());
  EXPECT_EQ(*diff, (std::vector<uint64_t>{3, 7, 19, 200, 201}));
  ExpectConsistent();
}

TEST_F(SnapshotTest, RewritingIdenticalBytesAddsNothing) {
  auto v = AttachNew(1, 1 * kMiB, kChunk);
  WritePattern(*v, 1, 1);
  Snap(*v);
  WritePattern(*v, 1, 1);  // dirty, same contents
  auto s2 = Snap(*v);
  EXPECT_EQ(s2.chunks_total, 1u);
  EXPECT_EQ(s2.chunks, 0u);
  EXPECT_EQ(s2.added_bytes, 0u);
}

TEST_F(SnapshotTest, DedupAcrossVolumes) {
  auto a = AttachNew(1, 4 * kMiB, kChunk);
  auto b = AttachNew(2, 4 * kMiB, kChunk);
  for (uint64_t c = 0; c < 8; ++c) {
    WritePattern(*a, c, 7);
    WritePattern(*b, c, 7);
  }
  auto sa = Snap(*a);
  auto sb = Snap(*b);
  EXPECT_EQ(StoredChunks(), 8u);
  EXPECT_EQ(sa.added_bytes, 8 * kChunk);
  EXPECT_EQ(sb.added_bytes, 0u);  // everything was already stored
  auto st = mgr_->Stats();
  EXPECT_EQ(st->referenced_bytes, 16 * kChunk);
  EXPECT_DOUBLE_EQ(st->dedup_ratio(), 2.0);
  EXPECT_EQ(Dump(sb), Image(*b));
  ExpectConsistent();
}

TEST_F(SnapshotTest, ZeroChunksAreNeverStored) {
  auto v = AttachNew(1, 2 * kMiB, kChunk);
  WriteChunk(*v, 0, std::string(kChunk, '\0'));  // dirty but all zero
  WritePattern(*v, 1, 1);
  auto s1 = Snap(*v);
  EXPECT_EQ(StoredChunks(), 1u);
  EXPECT_EQ(s1.chunks, 1u);  // no entry for a zero chunk over a never-written one
  // Zeroing a stored chunk writes a zero marker, not a chunk.
  WriteChunk(*v, 1, std::string(kChunk, '\0'));
  auto s2 = Snap(*v);
  EXPECT_EQ(s2.chunks, 1u);
  EXPECT_EQ(s2.added_bytes, 0u);
  EXPECT_EQ(StoredChunks(), 1u);  // s1 still references it
  EXPECT_EQ(Dump(s2), std::string(2 * kMiB, '\0'));
  EXPECT_NE(Dump(s1), Dump(s2));
  ExpectConsistent();
}

TEST_F(SnapshotTest, ReadRangeMatchesTheImageAcrossChunks) {
  auto v = AttachNew(1, 1 * kMiB, kChunk);
  WritePattern(*v, 1, 1);
  WritePattern(*v, 2, 1);
  auto s = Snap(*v);
  std::string img = Image(*v);
  std::string scratch;
  for (auto [off, len] : std::vector<std::pair<uint64_t, uint64_t>>{
           {0, 4096}, {kChunk - 100, 300}, {kChunk + 5, 2 * kChunk}, {0, kMiB}, {kMiB - 1, 1}}) {
    std::string out(len, 'x');
    ASSERT_TRUE(mgr_->Read(s, off, len, out.data(), &scratch).ok());
    EXPECT_EQ(out, img.substr(off, len)) << off << "+" << len;
  }
  std::string out(2, 'x');
  EXPECT_EQ(mgr_->Read(s, kMiB - 1, 2, out.data(), &scratch).code(), Code::kInvalidArgument);
}

TEST_F(SnapshotTest, PartialLastChunk) {
  auto v = AttachNew(1, kChunk * 3 + 4096, kChunk);  // last chunk is 4 KiB of the volume
  WriteChunk(*v, 3, Pattern(4096, 3, 1));
  WritePattern(*v, 0, 1);
  auto s = Snap(*v);
  EXPECT_EQ(s.bytes_total, kChunk + 4096);
  EXPECT_EQ(Dump(s), Image(*v));
}

TEST_F(SnapshotTest, CorruptChunkIsNamedByVerifyAndFailsDump) {
  auto v = AttachNew(1, 1 * kMiB, kChunk);
  for (uint64_t c = 0; c < 4; ++c) WritePattern(*v, c, 1);
  auto s = Snap(*v);
  auto ok = mgr_->Verify(s.IdString());
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(ok->ok());
  EXPECT_EQ(ok->chunks_checked, 4u);

  // Damage chunk 2's stored bytes inside RocksDB (its checksums stay right).
  Hash h = Sha256(Pattern(kChunk, 2, 1));
  ASSERT_TRUE(DamageChunk(*db_, h).ok());
  auto bad = mgr_->Verify(s.IdString());
  ASSERT_TRUE(bad.ok());
  ASSERT_EQ(bad->bad.size(), 1u);
  EXPECT_EQ(bad->bad[0].chunk, 2u);
  EXPECT_EQ(bad->bad[0].hash, HashHex(h));

  std::string path = (dir_ / "bad.raw").string();
  Status st = DumpTo(s.IdString(), path);
  EXPECT_EQ(st.code(), Code::kCorruption);
  EXPECT_NE(st.message().find("chunk 2"), std::string::npos) << st.message();
  EXPECT_EQ(std::filesystem::file_size(path), 0u);  // no wrong bytes left behind
  std::string out;
  EXPECT_EQ(mgr_->ReadChunk(s, 2, &out).code(), Code::kCorruption);
  EXPECT_TRUE(mgr_->ReadChunk(s, 1, &out).ok());
  EXPECT_EQ(out, Pattern(kChunk, 1, 1));
}

TEST_F(SnapshotTest, CopyBeforeWriteKeepsOldBytes) {
  mgr_.reset();
  SnapshotManagerOptions opts;
  opts.job.hold_sweep = true;  // the sweep waits: every write below hits an uncopied chunk
  OpenManager(opts);
  auto v = AttachNew(1, 1 * kMiB, kChunk);
  for (uint64_t c = 0; c < 16; ++c) WritePattern(*v, c, 1);
  std::string before = Image(*v);
  auto s = mgr_->Create(v->id(), {});
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->state, "pending");
  // A second snapshot while this one is pending is refused with a clear message.
  auto again = mgr_->Create(v->id(), {});
  EXPECT_EQ(again.status().code(), Code::kBusy);
  EXPECT_NE(again.status().message().find("still pending"), std::string::npos);
  EXPECT_EQ(mgr_->Delete(s->IdString()).code(), Code::kBusy);
  // Overwrite every chunk right after create returned.
  for (uint64_t c = 0; c < 16; ++c) WritePattern(*v, c, 2);
  auto mid = mgr_->Get(s->IdString());
  ASSERT_TRUE(mid.ok());
  EXPECT_EQ(mid->chunks_done, 16u);  // all copied by copy-before-write
  EXPECT_EQ(mid->state, "pending");
  // Release the held sweep: nothing is left to copy.
  SnapshotRecord done = ReleaseHeld(*v, s->IdString());
  EXPECT_EQ(Dump(done), before);
  EXPECT_NE(Image(*v), before);
  ExpectConsistent();
}

// Copy-before-write stages chunks too, and commits them within the same bound as the sweep:
// with the sweep held, 24 writes to frozen chunks and a bound of 4 chunks make several
// packs of at most 4 chunks each (the bound is reached on the 4th), never one of 24.
// A pending snapshot cannot be locked (its job rewrites the record until it completes, and
// would drop the flag); once completed it can, and the lock is in the stored record.
TEST_F(SnapshotTest, LockWaitsForCompletion) {
  mgr_.reset();
  SnapshotManagerOptions opts;
  opts.job.hold_sweep = true;
  OpenManager(opts);
  auto v = AttachNew(1, 2 * kMiB, kChunk);
  WritePattern(*v, 0, 1);
  auto s = mgr_->Create(v->id(), {});
  ASSERT_TRUE(s.ok()) << s.status().message();
  auto refused = mgr_->SetLocked(s->IdString(), true);
  EXPECT_EQ(refused.status().code(), Code::kBusy);
  EXPECT_EQ(refused.status().message(),
            "snapshot " + s->IdString() + " is pending; lock it once it has completed");
  SnapshotRecord done = ReleaseHeld(*v, s->IdString());
  EXPECT_FALSE(done.locked);
  auto locked = mgr_->SetLocked(s->IdString(), true);
  ASSERT_TRUE(locked.ok()) << locked.status().message();
  EXPECT_TRUE(locked->locked);
  EXPECT_TRUE(mgr_->Peek(s->IdString())->locked);  // straight from RocksDB
  EXPECT_EQ(mgr_->Delete(s->IdString()).code(), Code::kLocked);
}

TEST_F(SnapshotTest, CopyBeforeWriteCommitsWithinTheFlushBound) {
  mgr_.reset();
  SnapshotManagerOptions opts;
  opts.job.hold_sweep = true;
  opts.job.flush_bytes = 4 * kChunk;
  OpenManager(opts);
  auto v = AttachNew(1, 2 * kMiB, kChunk);
  constexpr uint64_t kChunks = 24;
  for (uint64_t c = 0; c < kChunks; ++c) WritePattern(*v, c, 1);
  const std::string before = Image(*v);
  auto s = mgr_->Create(v->id(), {});
  ASSERT_TRUE(s.ok()) << s.status().message();
  for (uint64_t c = 0; c < kChunks; ++c) WritePattern(*v, c, 2);  // each one copied first
  SnapshotRecord done = ReleaseHeld(*v, s->IdString());
  EXPECT_EQ(done.chunks, kChunks);

  std::map<uint64_t, uint64_t> per_pack;  // pack id -> chunks placed in it
  for (auto& [k, val] : Scan(Cf::kLocs))
    if (k.size() == kHashSize)
      if (auto loc = PackLoc::Decode(val)) per_pack[loc->pack]++;
  uint64_t total = 0, most = 0;
  for (auto& [pack, n] : per_pack) {
    total += n;
    most = std::max(most, n);
  }
  EXPECT_EQ(total, kChunks);
  EXPECT_LE(most, opts.job.flush_bytes / kChunk) << per_pack.size() << " pack(s)";
  EXPECT_GE(per_pack.size(), kChunks / (opts.job.flush_bytes / kChunk));
  EXPECT_EQ(Dump(done), before);
  ExpectConsistent();
}

// A WriteGate like the I/O layer's: a writer is admitted (Enter) before its BeforeWrite and
// leaves (Exit) after its data write; PauseWrites stops admitting, waits for the admitted
// ones, and captures the image at the instant.
class TestGate : public WriteGate {
 public:
  explicit TestGate(std::function<void()> at_instant) : at_instant_(std::move(at_instant)) {}
  void PauseWrites(uint64_t) override {
    std::unique_lock lock(mu_);
    paused_ = true;
    cv_.wait(lock, [&] { return in_flight_ == 0; });
    ++pauses;
    at_instant_();
  }
  void ResumeWrites(uint64_t) override {
    std::lock_guard lock(mu_);
    paused_ = false;
    cv_.notify_all();
  }
  void Enter() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !paused_; });
    ++in_flight_;
  }
  void Exit() {
    std::lock_guard lock(mu_);
    --in_flight_;
    cv_.notify_all();
  }
  int pauses = 0;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool paused_ = false;
  int in_flight_ = 0;
  std::function<void()> at_instant_;
};

TEST_F(SnapshotTest, PointInTimeUnderConcurrentWrites) {
  auto v = AttachNew(1, 2 * kMiB, kChunk);  // 32 chunks
  std::vector<std::string> at_instant;
  TestGate gate([&] { at_instant.push_back(Image(*v)); });
  mgr_->set_write_gate(&gate);
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int t = 0; t < 3; ++t) {
    writers.emplace_back([&, t] {
      // The hook exactly as the NBD server gets it.
      std::shared_ptr<io::VolumeWriteHook> hook = mgr_->WriteHookProvider()(*v);
      ASSERT_NE(hook, nullptr);
      for (uint64_t i = 0; !stop.load(); ++i) {
        uint64_t c = (i * 7 + static_cast<uint64_t>(t) * 11) % 32;
        std::string data = Pattern(kChunk, c, i * 3 + static_cast<uint64_t>(t));
        gate.Enter();
        SyncWaiter w;
        EXPECT_EQ(w.Resolve(hook->BeforeWrite(c * kChunk, kChunk, w)), 0);
        EXPECT_EQ(::pwrite(v->fd(), data.data(), kChunk, static_cast<off_t>(c * kChunk)),
                  static_cast<ssize_t>(kChunk));
        gate.Exit();
      }
    });
  }
  std::vector<SnapshotRecord> snaps;
  for (int i = 0; i < 5; ++i) {
    auto s = mgr_->Create(v->id(), {});
    ASSERT_TRUE(s.ok()) << s.status().message();
    auto done = mgr_->Wait(s->IdString());
    ASSERT_TRUE(done.ok());
    ASSERT_EQ(done->state, "completed") << done->error;
    snaps.push_back(*done);
  }
  stop = true;
  for (auto& w : writers) w.join();
  mgr_->set_write_gate(nullptr);
  ASSERT_EQ(gate.pauses, 5);
  for (size_t i = 0; i < snaps.size(); ++i)
    EXPECT_EQ(Dump(snaps[i]), at_instant[i]) << "snapshot " << i;
  ExpectConsistent();
}

TEST_F(SnapshotTest, ListShowTagAndJson) {
  auto a = AttachNew(1, 1 * kMiB, kChunk);
  auto b = AttachNew(2, 1 * kMiB, kChunk);
  WritePattern(*a, 0, 1);
  auto s1 = Snap(*a, {{"x", "1"}});
  auto s2 = Snap(*b);
  auto all = mgr_->List();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);
  auto of_a = mgr_->List(a->id());
  ASSERT_EQ(of_a->size(), 1u);
  EXPECT_EQ((*of_a)[0].id, s1.id);
  EXPECT_TRUE(s1.IdString().starts_with("snap-"));
  EXPECT_EQ(s1.IdString().size(), 21u);
  auto t = mgr_->Tag(s1.IdString(), {{"y", "2"}}, {"x"});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->tags, (Tags{{"y", "2"}}));
  EXPECT_EQ(mgr_->Get(s1.IdString())->tags, (Tags{{"y", "2"}}));
  EXPECT_EQ(mgr_->Get("snap-00000000000000ff").status().code(), Code::kNotFound);
  EXPECT_EQ(mgr_->Get("nonsense").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(mgr_->Tag(s1.IdString(), {{"bad key!", ""}}, {}).status().code(),
            Code::kInvalidArgument);
  auto j = SnapshotApiJson(*mgr_->Get(s1.IdString()));
  EXPECT_EQ(j["id"], s1.IdString());
  EXPECT_EQ(j["volume"], "vol1");
  EXPECT_EQ(j["state"], "completed");
  EXPECT_EQ(j["progress"], 1.0);
  EXPECT_EQ(j["size"], kMiB);
  EXPECT_EQ(j["added_bytes"], kChunk);
  EXPECT_TRUE(j.contains("created"));
  EXPECT_TRUE(j.contains("pause_us"));
  auto rec = DecodeSnapshotRecord(EncodeSnapshotRecord(s2));
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->version, s2.version);
  EXPECT_EQ(DecodeSnapshotRecord("{}").status().code(), Code::kCorruption);
  EXPECT_EQ(mgr_->Create(99, {}).status().code(), Code::kNotFound);
}

TEST_F(SnapshotTest, RescanFindsChangedChunksWhenDirtyStateIsLost) {
  auto v = AttachNew(1, 4 * kMiB, kChunk);
  for (uint64_t c = 0; c < 10; ++c) WritePattern(*v, c, 1);
  auto s1 = Snap(*v);
  // Changes behind the tracker's back (as if its state had been lost with them).
  auto write_raw = [&](uint64_t c, const std::string& data) {
    ASSERT_EQ(::pwrite(v->fd(), data.data(), data.size(), static_cast<off_t>(c * kChunk)),
              static_cast<ssize_t>(data.size()));
  };
  write_raw(2, Pattern(kChunk, 2, 5));
  write_raw(40, Pattern(kChunk, 40, 5));
  write_raw(5, std::string(kChunk, '\0'));
  mgr_.reset();
  rocksdb::WriteBatch b;
  StageDeleteDirtyState(*db_, b, v->id());
  ASSERT_TRUE(db_->Write(b).ok());
  OpenManager();
  ASSERT_TRUE(mgr_->AttachVolume(v, /*created_now=*/false).ok());
  EXPECT_EQ((*mgr_->Tracking(v->id()))->tracker().DirtyChunks(), (std::vector<uint64_t>{2, 5, 40}));
  auto s2 = Snap(*v);
  EXPECT_EQ(s2.chunks, 3u);
  EXPECT_EQ(Dump(s2), Image(*v));
  EXPECT_NE(Dump(s1), Image(*v));
  ExpectConsistent();
}

// At shutdown a running copy is cancelled (a policy round waiting for it ends), no new
// snapshot starts, and the next start fails the interrupted one as after a crash.
TEST_F(SnapshotTest, ShutdownCancelsRunningSnapshotsAndRefusesNewOnes) {
  SnapshotManagerOptions opts;
  opts.job.hold_sweep = true;  // the copy waits until Release(): it is running at shutdown
  mgr_.reset();
  OpenManager(opts);
  auto v = AttachNew(1, 4 * kMiB, kChunk);
  for (uint64_t c = 0; c < 8; ++c) WritePattern(*v, c, 1);
  auto r = mgr_->Create(v->id(), {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  auto waiter = std::async(std::launch::async, [&] { return mgr_->Wait(r->IdString()); });
  mgr_->Shutdown();
  auto waited = waiter.get();
  ASSERT_TRUE(waited.ok()) << waited.status().message();
  EXPECT_EQ(waited->state, "pending");
  auto refused = mgr_->Create(v->id(), {});
  EXPECT_EQ(refused.status().code(), Code::kBusy);
  EXPECT_EQ(refused.status().message(), "blocksnapd is stopping: no new snapshots");

  mgr_.reset();
  OpenManager();
  auto after = mgr_->Get(r->IdString());
  ASSERT_TRUE(after.ok()) << after.status().message();
  EXPECT_EQ(after->state, "error");
  ASSERT_TRUE(mgr_->AttachVolume(v, /*created_now=*/false).ok());
  auto s2 = Snap(*v);
  EXPECT_EQ(s2.chunks, 8u);  // the interrupted snapshot's chunks are dirty again
  EXPECT_EQ(Dump(s2), Image(*v));
  ExpectConsistent();
}

// flush_bytes 1 commits after every chunk, so several commits run in the background at
// once; one of them failing must fail the snapshot cleanly, whatever the others did.
TEST_F(SnapshotTest, FailedBackgroundCommitFailsTheSnapshotAndLosesNothing) {
  SnapshotManagerOptions opts;
  opts.job.flush_bytes = 1;
  mgr_.reset();
  OpenManager(opts);
  auto v = AttachNew(1, 4 * kMiB, kChunk);
  for (uint64_t c = 0; c < 40; ++c) WritePattern(*v, c, 1);
  auto s1 = Snap(*v);
  EXPECT_EQ(s1.chunks, 40u);
  const std::string image1 = Image(*v);
  EXPECT_EQ(Dump(s1), image1);
  for (uint64_t c = 10; c < 30; ++c) WritePattern(*v, c, 2);

  // Pack files cannot be written: a regular file where their directory goes.
  const std::filesystem::path ingest = db_->ingest_dir();
  std::filesystem::remove_all(ingest);
  { std::ofstream(ingest) << "in the way"; }
  auto r = mgr_->Create(v->id(), {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  auto failed = mgr_->Wait(r->IdString());
  ASSERT_TRUE(failed.ok()) << failed.status().message();
  EXPECT_EQ(failed->state, "error");
  EXPECT_NE(failed->error.find(ingest.string()), std::string::npos) << failed->error;
  EXPECT_EQ(StoredChunks(), 40u);
  EXPECT_EQ(Dump(s1), image1);  // the first snapshot is untouched
  ExpectConsistent();

  // The changed chunks are dirty again: the next snapshot stores exactly them.
  std::filesystem::remove(ingest);
  auto s3 = Snap(*v);
  EXPECT_EQ(s3.chunks, 20u);
  EXPECT_EQ(s3.added_bytes, 20 * kChunk);
  EXPECT_EQ(Dump(s3), Image(*v));
  ExpectConsistent();
}

TEST_F(SnapshotTest, DirtyStateSurvivesRestartBetweenSnapshots) {
  auto v = AttachNew(1, 4 * kMiB, kChunk);
  WritePattern(*v, 1, 1);
  Snap(*v);
  WritePattern(*v, 2, 1);
  WritePattern(*v, 3, 1);
  mgr_.reset();
  OpenManager();
  ASSERT_TRUE(mgr_->AttachVolume(v, false).ok());
  EXPECT_EQ((*mgr_->Tracking(v->id()))->tracker().DirtyChunks(), (std::vector<uint64_t>{2, 3}));
  auto s2 = Snap(*v);
  EXPECT_EQ(s2.chunks, 2u);
  EXPECT_EQ(Dump(s2), Image(*v));
}

// Three snapshots where the middle one changes chunks 0 and 1 and the third changes them
// again: once the middle one is deleted its entries go, and a read at its version would find
// the first snapshot's entries (another snapshot's bytes, which pass the hash check).
TEST_F(SnapshotTest, ReadsOfADeletedSnapshotFailInsteadOfReadingAnOlderOne) {
  auto v = AttachNew(1, 1 * kMiB, kChunk);
  WritePattern(*v, 0, 1);
  WritePattern(*v, 1, 1);
  auto s1 = Snap(*v);
  WritePattern(*v, 0, 2);
  WritePattern(*v, 1, 2);
  auto s2 = Snap(*v);
  WritePattern(*v, 0, 3);
  WritePattern(*v, 1, 3);
  auto s3 = Snap(*v);

  std::string out, scratch;
  ASSERT_TRUE(mgr_->ReadChunk(s2, 1, &out).ok());
  EXPECT_EQ(out, Pattern(kChunk, 1, 2));
  std::string range(2 * kChunk, 'x');
  ASSERT_TRUE(mgr_->Read(s2, 0, range.size(), range.data(), &scratch).ok());
  EXPECT_EQ(range, Pattern(kChunk, 0, 2) + Pattern(kChunk, 1, 2));

  ASSERT_TRUE(mgr_->Delete(s2.IdString()).ok());
  EXPECT_TRUE(mgr_->Deleted(s2.id));
  EXPECT_FALSE(mgr_->Deleted(s1.id));
  EXPECT_FALSE(mgr_->Deleted(s3.id));
  // Its entries were collected: a lookup at its version now finds s1's.
  auto stale = mgr_->block_map().Lookup(v->id(), 1, s2.version);
  ASSERT_TRUE(stale.ok());
  ASSERT_TRUE(stale->has_value());
  EXPECT_EQ(**stale, MapValue::Of(Sha256(std::span(
                         reinterpret_cast<const uint8_t*>(Pattern(kChunk, 1, 1).data()), kChunk))));
  Status st = mgr_->ReadChunk(s2, 1, &out);
  EXPECT_EQ(st.code(), Code::kNotFound) << st.message();
  EXPECT_NE(st.message().find(s2.IdString()), std::string::npos) << st.message();
  EXPECT_EQ(mgr_->Read(s2, 0, range.size(), range.data(), &scratch).code(), Code::kNotFound);
  // A chunk that never had data reads as zeros without the store: it fails all the same.
  EXPECT_EQ(mgr_->ReadChunk(s2, 7, &out).code(), Code::kNotFound);

  // The others read as before.
  ASSERT_TRUE(mgr_->ReadChunk(s1, 1, &out).ok());
  EXPECT_EQ(out, Pattern(kChunk, 1, 1));
  ASSERT_TRUE(mgr_->ReadChunk(s3, 1, &out).ok());
  EXPECT_EQ(out, Pattern(kChunk, 1, 3));
  ExpectConsistent();
}

// A ChunkStore that runs a callback (once) before its first Get: lets a test delete a
// snapshot while Dump or Verify iterates it, without the manager's lock, as a D-Bus client
// could.
class GetHookStore final : public ChunkStore {
 public:
  explicit GetHookStore(Db& db) : inner_(db) {}
  std::function<void()> before_get;
  // When set, a Get whose answer is not OK returns it instead of reading (a damaged store).
  std::function<Status(const Hash&)> fail_get;

  void Put(ChunkTxn& t, const Hash& h, std::span<const uint8_t> d) override { inner_.Put(t, h, d); }
  Status PutNow(ChunkTxn& t, const Hash& h, std::span<const uint8_t> d) override {
    return inner_.PutNow(t, h, d);
  }
  Status Discard(ChunkTxn& t) override { return inner_.Discard(t); }
  void Release(ChunkTxn& t, const Hash& h, uint64_t size) override { inner_.Release(t, h, size); }
  Result<CommitInfo> Commit(ChunkTxn& t, const CommitHook& hook) override {
    return inner_.Commit(t, hook);
  }
  Status Get(const Hash& h, std::string* out) override {
    if (auto f = std::exchange(before_get, nullptr)) f();
    if (fail_get)
      if (Status st = fail_get(h); !st.ok()) return st;
    return inner_.Get(h, out);
  }
  Result<bool> Contains(const Hash& h) override { return inner_.Contains(h); }
  Result<int64_t> RefCount(const Hash& h) override { return inner_.RefCount(h); }
  Result<StoreStats> Stats() override { return inner_.Stats(); }
  void WaitMaintenance() override { inner_.WaitMaintenance(); }

 private:
  RocksChunkStore inner_;
};

// A manager over a GetHookStore, and a volume with three snapshots s1..s3 that each
// rewrote every chunk: deleting s2 frees all of its chunks.
class DeletedUnderItTest : public SnapshotTest {
 protected:
  void SetUp() override {
    SnapshotTest::SetUp();
    mgr_.reset();
    auto owned = std::make_unique<GetHookStore>(*db_);
    store_ = owned.get();
    auto m = SnapshotManager::Open(*db_, {}, std::move(owned));
    ASSERT_TRUE(m.ok()) << m.status().message();
    mgr_ = std::move(m).value();
    v_ = AttachNew(1, 1 * kMiB, kChunk);
    for (uint64_t c = 0; c < 4; ++c) WritePattern(*v_, c, 1);
    Snap(*v_);
    for (uint64_t c = 0; c < 4; ++c) WritePattern(*v_, c, 2);
    s2_ = Snap(*v_);
    image2_ = Image(*v_);
    for (uint64_t c = 0; c < 4; ++c) WritePattern(*v_, c, 3);
    Snap(*v_);
  }
  GetHookStore* store_ = nullptr;
  std::shared_ptr<Volume> v_;
  SnapshotRecord s2_;
  std::string image2_;
};

TEST_F(DeletedUnderItTest, DumpFails) {
  EXPECT_EQ(Dump(s2_), image2_);
  auto report = mgr_->Verify(s2_.IdString());
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok());

  // Dump: s2 goes before the first chunk is read; the file is left empty.
  const std::string path = (dir_ / "s2.raw").string();
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  ASSERT_TRUE(fd);
  store_->before_get = [&] { ASSERT_TRUE(mgr_->Delete(s2_.IdString()).ok()); };
  Status st = mgr_->Dump(s2_.IdString(), fd.get());
  EXPECT_EQ(st.code(), Code::kNotFound) << st.message();
  EXPECT_NE(st.message().find("deleted while it was being dumped"), std::string::npos)
      << st.message();
  EXPECT_EQ(std::filesystem::file_size(path), 0u);
  ExpectConsistent();
}

TEST_F(DeletedUnderItTest, VerifyFails) {
  // Deleted before the first chunk is read: its chunks are gone, which is no damage to
  // report; the verdict is that there is no such snapshot any more.
  store_->before_get = [&] { ASSERT_TRUE(mgr_->Delete(s2_.IdString()).ok()); };
  auto report = mgr_->Verify(s2_.IdString());
  EXPECT_EQ(report.status().code(), Code::kNotFound) << report.status().message();
  EXPECT_NE(report.status().message().find("deleted while it was being verified"),
            std::string::npos);
  ExpectConsistent();
}

// Verify lists a chunk the store cannot read (an I/O error: its pack file gone or unreadable)
// like a corrupt one, and goes on with the others instead of giving up.
TEST_F(DeletedUnderItTest, VerifyListsUnreadableChunksAndGoesOn) {
  int gets = 0;
  store_->fail_get = [&](const Hash&) {
    return ++gets % 2 ? IOError("reading pack 7: No such file or directory") : Status::Ok();
  };
  auto report = mgr_->Verify(s2_.IdString());
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_EQ(report->chunks_checked, 4u);
  ASSERT_EQ(report->bad.size(), 2u);
  EXPECT_EQ(report->bad[0].chunk, 0u);
  EXPECT_EQ(report->bad[1].chunk, 2u);
  EXPECT_NE(report->bad[0].problem.find("No such file"), std::string::npos)
      << report->bad[0].problem;
  EXPECT_EQ(report->bad[0].hash, HashHex(Sha256(Pattern(kChunk, 0, 2))));
}

// A snapshot record that cannot be decoded is not a deleted snapshot: the GC of its volume
// (a snapshot delete, the recovery at every start) drops none of the entries it may read,
// so once the record is repaired the snapshot reads back whole.
TEST_F(SnapshotTest, UndecodableRecordKeepsItsVolumesEntries) {
  auto v = AttachNew(1, 1 * kMiB, kChunk);
  for (uint64_t c = 0; c < 4; ++c) WritePattern(*v, c, 1);
  auto s1 = Snap(*v);
  for (uint64_t c = 0; c < 4; ++c) WritePattern(*v, c, 2);
  auto s2 = Snap(*v);
  auto refs = [&] {
    std::vector<int64_t> out;
    for (uint64_t c = 0; c < 4; ++c) {
      auto n = mgr_->store().RefCount(Sha256(Pattern(kChunk, c, 1)));
      out.push_back(n.ok() ? *n : -1);
    }
    return out;
  };
  const std::vector<int64_t> before = refs();
  ASSERT_EQ(before, std::vector<int64_t>(4, 1));
  auto raw = db_->Get(Cf::kMeta, s1.Key());
  ASSERT_TRUE(raw.ok() && raw->has_value());

  // Damaged, but its JSON still names the volume: deleting s2 collects nothing of s1's.
  nlohmann::json j = nlohmann::json::parse(**raw);
  j["state"] = "bogus";
  ASSERT_TRUE(db_->Put(Cf::kMeta, s1.Key(), j.dump()).ok());
  ASSERT_TRUE(mgr_->Delete(s2.IdString()).ok());
  EXPECT_EQ(refs(), before);

  // Not even JSON (no volume to tell): the recovery of a restart collects nothing either.
  ASSERT_TRUE(db_->Put(Cf::kMeta, s1.Key(), "{\"id\": \"snap-").ok());
  mgr_.reset();
  db_.reset();
  OpenDb();
  OpenManager();
  EXPECT_EQ(refs(), before);

  // Repaired: s1 reads as it was taken, and the store is consistent.
  ASSERT_TRUE(db_->Put(Cf::kMeta, s1.Key(), **raw).ok());
  std::string out;
  for (uint64_t c = 0; c < 4; ++c) {
    ASSERT_TRUE(mgr_->ReadChunk(s1, c, &out).ok()) << c;
    EXPECT_EQ(out, Pattern(kChunk, c, 1)) << c;
  }
  ExpectConsistent();
}

}  // namespace
}  // namespace blocksnap::test
