#include "snapshot/hydrator.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>

#include "volume/volume_record.h"

namespace blocksnap {
namespace {

constexpr size_t kBatchChunks = 16;
// After an error that is not a chunk's own (ENOSPC, EIO of the file), the background fill
// waits, doubling from kRetryMin to kRetryMax, and tries again.
constexpr std::chrono::seconds kRetryMin{1}, kRetryMax{60};

std::string WordKey(uint64_t volume_id, uint64_t word) {
  std::string k = HydrateKey(volume_id) + "/";
  for (int i = 7; i >= 0; --i) k.push_back(static_cast<char>((word >> (i * 8)) & 0xff));
  return k;
}

std::string EncodeWord(uint64_t bits) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((bits >> (i * 8)) & 0xff);
  return s;
}

uint64_t DecodeWord(std::string_view s) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < s.size(); ++i)
    v |= uint64_t(static_cast<uint8_t>(s[i])) << (i * 8);
  return v;
}

}  // namespace

std::string HydrateKey(uint64_t volume_id) {
  return "hydrate/" + FormatVolumeId(volume_id);
}

Hydration::Hydration(Db& db, SnapshotManager& snapshots, std::shared_ptr<Volume> volume,
                     uint64_t base, HydrationOptions options)
    : db_(db),
      snapshots_(snapshots),
      volume_(std::move(volume)),
      base_(base),
      options_(std::move(options)),
      local_((volume_->size() + volume_->chunk_size() - 1) / volume_->chunk_size()) {
  for (uint64_t w = 0; w < local_.words(); ++w) local_.SetWord(w, ~uint64_t{0});
}

Hydration::~Hydration() {
  Stop();
}

uint64_t Hydration::ChunkBytes(uint64_t c) const {
  const uint64_t cs = volume_->chunk_size(), off = c * cs;
  return std::min(cs, volume_->size() - off);
}

void Hydration::Need(uint64_t c) {
  if (c >= local_.size() || !local_.Test(c)) return;
  local_.Clear(c);
  total_ += ChunkBytes(c);
}

Status Hydration::PersistBase() {
  return db_.Put(Cf::kMeta, HydrateKey(volume_->id()), std::to_string(base_));
}

Status Hydration::LoadPersisted() {
  const std::string prefix = HydrateKey(volume_->id()) + "/";
  BS_RETURN_IF_ERROR(db_.ScanPrefix(Cf::kMeta, prefix, [&](std::string_view k, std::string_view v) {
    if (k.size() != prefix.size() + 8) return true;
    uint64_t w = 0;
    for (size_t i = prefix.size(); i < k.size(); ++i) w = w << 8 | static_cast<uint8_t>(k[i]);
    if (w < local_.words()) local_.OrWord(w, DecodeWord(v));
    return true;
  }));
  // hydrated = total - the bytes of the chunks still not local
  uint64_t missing = 0;
  for (uint64_t c = 0; c < local_.size(); ++c)
    if (!local_.Test(c)) missing += ChunkBytes(c);
  hydrated_.store(total_ >= missing ? total_ - missing : 0);
  return Status::Ok();
}

Result<std::unique_ptr<AtomicBitmap>> Hydration::LoadNotLocal(Db& db, BlockMap& map,
                                                              uint64_t volume_id, uint64_t chunks) {
  BS_ASSIGN_OR_RETURN(auto base_text, db.Get(Cf::kMeta, HydrateKey(volume_id)));
  if (!base_text) return std::unique_ptr<AtomicBitmap>();
  uint64_t base = 0;
  if (std::from_chars(base_text->data(), base_text->data() + base_text->size(), base).ec !=
      std::errc())
    return Corruption(HydrateKey(volume_id) + ": not a version number");
  auto missing = std::make_unique<AtomicBitmap>(chunks);
  BS_RETURN_IF_ERROR(map.ForEachEntry(volume_id, [&](uint64_t c, uint64_t v, const MapValue& val) {
    if (v == base && !val.zero && c < chunks) missing->Set(c);
    return Status::Ok();
  }));
  const std::string prefix = HydrateKey(volume_id) + "/";
  BS_RETURN_IF_ERROR(db.ScanPrefix(Cf::kMeta, prefix, [&](std::string_view k, std::string_view v) {
    if (k.size() != prefix.size() + 8) return true;
    uint64_t w = 0;
    for (size_t i = prefix.size(); i < k.size(); ++i) w = w << 8 | static_cast<uint8_t>(k[i]);
    if (w < missing->words()) missing->SetWord(w, missing->Word(w) & ~DecodeWord(v));
    return true;
  }));
  return missing;
}

namespace {

void StageDeleteLocalBits(Db& db, rocksdb::WriteBatch& b, uint64_t volume_id, Status* st) {
  *st = db.ScanPrefix(Cf::kMeta, HydrateKey(volume_id) + "/",
                      [&](std::string_view k, std::string_view) {
                        b.Delete(db.cf(Cf::kMeta), rocksdb::Slice(k.data(), k.size()));
                        return true;
                      });
}

}  // namespace

Status Hydration::DeleteState(Db& db, uint64_t volume_id) {
  rocksdb::WriteBatch b;
  Status st;
  StageDeleteLocalBits(db, b, volume_id, &st);
  BS_RETURN_IF_ERROR(st);
  b.Delete(db.cf(Cf::kMeta), HydrateKey(volume_id));
  return db.Write(b);
}

Status Hydration::DeleteLocalBits(Db& db, uint64_t volume_id) {
  rocksdb::WriteBatch b;
  Status st;
  StageDeleteLocalBits(db, b, volume_id, &st);
  BS_RETURN_IF_ERROR(st);
  return b.Count() ? db.Write(b) : Status::Ok();
}

Status Hydration::FillLocked(const std::vector<uint64_t>& chunks) {
  const uint64_t cs = volume_->chunk_size();
  std::string buf;
  for (uint64_t c : chunks) {
    BS_ASSIGN_OR_RETURN(auto v, snapshots_.block_map().Lookup(volume_->id(), c, base_));
    if (!v || v->zero) continue;  // nothing to copy (a hole reads as zeros)
    BS_RETURN_IF_ERROR(
        snapshots_.store()
            .Get(v->hash, &buf)
            .WithContext("hydrating chunk " + std::to_string(c) + " of " + volume_->name()));
    const uint64_t off = c * cs, len = std::min<uint64_t>(ChunkBytes(c), buf.size());
    uint64_t done = 0;
    while (done < len) {
      ssize_t n =
          ::pwrite(volume_->fd(), buf.data() + done, len - done, static_cast<off_t>(off + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return FromErrno(errno, "hydrating " + volume_->name());
      done += static_cast<uint64_t>(n);
    }
  }
  if (::fdatasync(volume_->fd()) != 0) return FromErrno(errno, "syncing " + volume_->name());
  // Durable bits: the words touched, with the new bits, in one synced batch.
  rocksdb::WriteBatch b;
  std::vector<uint64_t> words;
  for (uint64_t c : chunks) {
    uint64_t w = c >> 6;
    if (words.empty() || words.back() != w) words.push_back(w);
  }
  for (uint64_t w : words) {
    uint64_t bits = local_.Word(w);
    for (uint64_t c : chunks)
      if (c >> 6 == w) bits |= uint64_t{1} << (c & 63);
    b.Put(db_.cf(Cf::kMeta), WordKey(volume_->id(), w), EncodeWord(bits));
  }
  BS_RETURN_IF_ERROR(db_.Write(b));
  uint64_t bytes = 0;
  for (uint64_t c : chunks) {
    local_.Set(c);
    bytes += ChunkBytes(c);
  }
  hydrated_.fetch_add(bytes, std::memory_order_relaxed);
  return Status::Ok();
}

int Hydration::Fill(uint64_t first, uint64_t last) noexcept {
  std::lock_guard lock(fill_mu_);
  std::vector<uint64_t> chunks;
  for (uint64_t c = first; c <= last && c < local_.size(); ++c)
    if (!local_.Test(c)) chunks.push_back(c);
  if (chunks.empty()) return 0;
  Status st = FillLocked(chunks);
  if (!st.ok()) {
    spdlog::error("volume {}: {}", volume_->name(), st.message());
    // ENOSPC when the fill could not be written (a full disk), as a write to a full file
    // system would fail; EIO for a damaged or missing chunk and anything else.
    return -RequestErrno(st);
  }
  if (paused_.load(std::memory_order_relaxed)) {
    // The background fill waits after an error; this one worked, so it need not wait.
    {
      std::lock_guard lock(stop_mu_);
      wake_ = true;
    }
    stop_cv_.notify_all();
  }
  return 0;
}

void Hydration::Start() {
  thread_ = std::thread([this] { Run(); });
}

void Hydration::Stop() {
  {
    std::lock_guard lock(stop_mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  std::lock_guard lock(join_mu_);
  if (thread_.joinable()) thread_.join();
}

void Hydration::Run() {
  using Clock = std::chrono::steady_clock;
  const uint64_t rate = options_.fast ? 0 : options_.rate;
  const auto t0 = Clock::now();
  uint64_t copied = 0;  // bytes this run, for the rate
  auto last_report = Clock::now();
  uint64_t next = 0;
  uint64_t unreadable = 0;   // chunks the store could not give back, skipped
  auto backoff = kRetryMin;  // the wait before the next try after an error
  for (;;) {
    {
      std::unique_lock lock(stop_mu_);
      if (stop_) return;
      if (volume_->deleted()) {
        if (Status st = DeleteState(db_, volume_->id()); !st.ok())
          spdlog::warn("volume {}: dropping its hydration state: {}", volume_->name(),
                       st.message());
        return;
      }
      if (rate) {
        // Token bucket: wait until `copied` bytes are due at `rate`.
        // Whole seconds first: copied * 10^6 would pass 2^64 after 18 TB.
        auto due = t0 + std::chrono::seconds(copied / rate) +
                   std::chrono::microseconds((copied % rate) * 1000000 / rate);
        if (stop_cv_.wait_until(lock, due, [this] { return stop_; })) return;
      }
    }
    std::vector<uint64_t> batch;
    Status failed;  // an error that is not the chunk's own: the batch is tried again later
    {
      std::lock_guard lock(fill_mu_);
      for (; next < local_.size() && batch.size() < kBatchChunks; ++next)
        if (!local_.Test(next)) batch.push_back(next);
      if (!batch.empty() && !FillLocked(batch).ok()) {
        // Again one by one: a chunk the store cannot give back (damaged or missing) is
        // skipped and stays not local, so its reads keep failing with EIO rather than
        // reading a hole; the others go on. Any other error (a full disk, the volume's file
        // system, the database) pauses hydration at that chunk (below).
        for (uint64_t c : batch) {
          if (local_.Test(c)) continue;
          Status st = FillLocked({c});
          if (st.ok()) continue;
          if (st.code() != Code::kCorruption && st.code() != Code::kNotFound) {
            failed = st;
            next = c;
            break;
          }
          spdlog::error("volume {}: {}; skipping it", volume_->name(), st.message());
          ++unreadable;
        }
      }
    }
    if (!failed.ok()) {
      // Transient or not, waiting costs nothing: reads and writes still fill on demand, and
      // one that succeeds ends the wait (Fill). Logged once per pause, not per try.
      if (!paused_.exchange(true))
        spdlog::error("volume {}: hydration paused: {}; retrying every {}-{} s", volume_->name(),
                      failed.message(), kRetryMin.count(), kRetryMax.count());
      std::unique_lock lock(stop_mu_);
      if (stop_cv_.wait_for(lock, backoff, [this] { return stop_ || wake_; }) && stop_) return;
      wake_ = false;
      backoff = std::min(backoff * 2, kRetryMax);
      continue;
    }
    if (paused_.exchange(false)) {
      spdlog::info("volume {}: hydration resumed", volume_->name());
      backoff = kRetryMin;
    }
    for (uint64_t c : batch) copied += ChunkBytes(c);
    if (next >= local_.size() && unreadable) {
      // Never "done" with a chunk missing: that would drop the state that keeps its reads
      // going to the store (and failing) instead of to a hole in the file.
      if (options_.progress) options_.progress(hydrated_bytes(), total_, false);
      spdlog::error(
          "volume {}: hydrated all but {} chunk(s) that are damaged in the store; their reads "
          "fail with EIO; hydration retries them at the next start",
          volume_->name(), unreadable);
      return;
    }
    const bool done = next >= local_.size();
    if (done || Clock::now() - last_report >= std::chrono::milliseconds(500)) {
      last_report = Clock::now();
      if (options_.progress) options_.progress(hydrated_bytes(), total_, done);
    }
    if (done) return;
  }
}

}  // namespace blocksnap
