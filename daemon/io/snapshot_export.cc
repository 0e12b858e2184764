#include "io/snapshot_export.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>

#include "util/time_format.h"

namespace blocksnap::io {
namespace {

// Upper bound of extents per BLOCK_STATUS answer; the client asks again for the rest.
constexpr size_t kMaxExtents = 1024;

int ToErrno(const Status& st) {
  switch (st.code()) {
    case Code::kNotFound:  // the snapshot was deleted under us
      return -ESHUTDOWN;
    default:
      return -EIO;
  }
}

}  // namespace

// --- SnapshotExports ---

std::vector<nbd::ExportListing> SnapshotExports::List() {
  std::vector<nbd::ExportListing> out;
  auto all = snapshots_.PeekAll();
  if (!all.ok()) {
    spdlog::warn("listing snapshot exports: {}", all.status().message());
    return out;
  }
  for (const SnapshotRecord& r : *all) {
    if (!r.completed()) continue;
    out.push_back({r.volume_name + "@" + r.IdString(),
                   "blocksnap snapshot " + r.IdString() + " of volume " + r.volume_name +
                       " taken " + FormatRfc3339(r.created) + " (read-only)"});
  }
  return out;
}

std::unique_ptr<nbd::Export> SnapshotExports::Open(std::string_view name, EventLoop& loop) {
  const size_t at = name.rfind('@');
  if (at == std::string_view::npos || at == 0) return nullptr;
  const std::string_view volume = name.substr(0, at), id = name.substr(at + 1);
  auto snap = snapshots_.Peek(id);
  if (!snap.ok() || !snap->completed() || snap->volume_name != volume) return nullptr;
  // The ids must match exactly (Peek also accepts other spellings of the number).
  if (snap->IdString() != id) return nullptr;
  std::vector<std::string> older;
  if (auto all = snapshots_.PeekAll(); all.ok()) {
    for (const SnapshotRecord& r : *all) {
      if (r.volume_id == snap->volume_id && r.completed() && r.version < snap->version)
        older.push_back(r.IdString());
    }
  }
  return std::make_unique<SnapshotExport>(*this, std::move(snap).value(), std::move(older), loop);
}

// --- SnapshotExport ---

SnapshotExport::SnapshotExport(SnapshotExports& source, SnapshotRecord snap,
                               std::vector<std::string> older, EventLoop& loop)
    : source_(source), snap_(std::move(snap)), older_(std::move(older)), loop_(loop) {
  info_.size = snap_.size;
  info_.read_only = true;
  info_.can_flush = true;  // nothing to flush: answered at once
  info_.can_fua = info_.can_trim = info_.can_zero = info_.can_fast_zero = false;
  info_.can_cache = true;
  info_.can_multi_conn = true;  // immutable: every connection sees the same bytes
  info_.block_sizes.preferred =
      uint32_t(std::clamp<uint64_t>(snap_.chunk_size, 4096, nbd::kMaxPayload));
  info_.description =
      "blocksnap snapshot " + snap_.IdString() + " of volume " + snap_.volume_name + " (read-only)";
  contexts_.push_back(std::string(nbd::kBaseAllocation));
  for (const std::string& id : older_) {
    contexts_.push_back(std::string(kChangedContextPrefix) + id);
    contexts_.push_back(std::string(kQemuDirtyContextPrefix) + id);
    changed_.emplace_back();
    changed_loaded_.push_back(std::make_unique<std::atomic<bool>>(false));
  }
}

SnapshotExport::~SnapshotExport() {
  assert(in_flight_.load() == 0);
}

bool SnapshotExport::Gone() noexcept {
  if (gone_.load(std::memory_order_relaxed)) return true;
  SnapshotManager& m = source_.snapshots();
  const uint64_t n = m.deletions();
  if (n == seen_deletions_.load(std::memory_order_relaxed)) return false;
  // Some snapshot was deleted since: this one? (A short lock, once per delete.)
  if (m.Deleted(snap_.id)) {
    gone_.store(true, std::memory_order_relaxed);
    return true;
  }
  seen_deletions_.store(n, std::memory_order_relaxed);
  return false;
}

template <typename Fn>
void SnapshotExport::OffLoop(nbd::Completion& done, Fn fn) noexcept {
  in_flight_.fetch_add(1, std::memory_order_relaxed);
  nbd::Completion* d = &done;
  source_.pool().Post([this, d, fn = std::move(fn)]() mutable {
    int r = fn();
    loop_.Post([this, d, r] {
      in_flight_.fetch_sub(1, std::memory_order_relaxed);
      d->Complete(r);
    });
  });
}

int SnapshotExport::EnsureAllocation() noexcept {
  if (allocation_loaded_.load(std::memory_order_acquire)) return 0;
  std::lock_guard lock(load_mu_);
  if (allocation_loaded_.load(std::memory_order_relaxed)) return 0;
  std::vector<uint8_t> bits(snap_.ChunkCount(), 0);
  Status st = source_.snapshots().block_map().ForEachAsOf(snap_.volume_id, snap_.version,
                                                          [&](uint64_t c, const MapValue& v) {
                                                            if (c < bits.size() && !v.zero)
                                                              bits[c] = 1;
                                                            return Status::Ok();
                                                          });
  if (!st.ok()) {
    spdlog::warn("export of {}: loading its block map: {}", snap_.IdString(), st.message());
    return -EIO;
  }
  data_chunks_ = std::move(bits);
  allocation_loaded_.store(true, std::memory_order_release);
  return 0;
}

int SnapshotExport::EnsureChanged(size_t k) noexcept {
  if (changed_loaded_[k]->load(std::memory_order_acquire)) return 0;
  std::lock_guard lock(load_mu_);
  if (changed_loaded_[k]->load(std::memory_order_relaxed)) return 0;
  auto chunks = source_.snapshots().Diff(older_[k], snap_.IdString());
  if (!chunks.ok()) {
    spdlog::warn("export of {}: changes since {}: {}", snap_.IdString(), older_[k],
                 chunks.status().message());
    return ToErrno(chunks.status());
  }
  changed_[k] = std::move(chunks).value();
  changed_loaded_[k]->store(true, std::memory_order_release);
  return 0;
}

template <typename Miss>
int SnapshotExport::CopyChunks(uint64_t offset, std::span<uint8_t> buf, Miss miss) noexcept {
  const uint64_t cs = snap_.chunk_size;
  uint8_t* out = buf.data();
  uint64_t left = buf.size();
  while (left > 0) {
    const uint64_t c = offset / cs, in = offset % cs, n = std::min(left, cs - in);
    if (!data_chunks_[c]) {
      std::memset(out, 0, n);
    } else if (!source_.cache().CopyOut({snap_.id, c}, in, n, out)) {
      if (int r = miss(c, in, n, out); r < 0) return r;
    }
    out += n;
    offset += n;
    left -= n;
  }
  return 0;
}

bool SnapshotExport::TryReadCached(uint64_t offset, std::span<uint8_t> buf) noexcept {
  auto miss = [](uint64_t, uint64_t, uint64_t, uint8_t*) { return -EAGAIN; };  // for the pool
  return CopyChunks(offset, buf, miss) == 0;
}

int SnapshotExport::ReadBlocking(uint64_t offset, std::span<uint8_t> buf) noexcept {
  if (int r = EnsureAllocation(); r < 0) return r;
  int r = CopyChunks(offset, buf, [this](uint64_t c, uint64_t in, uint64_t n, uint8_t* out) {
    std::string chunk;
    Status st = source_.snapshots().ReadChunk(snap_, c, &chunk);
    if (!st.ok()) {
      spdlog::error("export of {}: {}", snap_.IdString(), st.message());
      return ToErrno(st);
    }
    if (chunk.size() < in + n) return -EIO;
    std::memcpy(out, chunk.data() + in, n);
    source_.cache().Insert({snap_.id, c}, std::move(chunk));
    return 0;
  });
  // Holes come from the allocation, which a load after the delete would have got wrong.
  if (r == 0 && Gone()) return -ESHUTDOWN;
  return r;
}

int SnapshotExport::CacheBlocking(uint64_t offset, uint64_t length) noexcept {
  if (int r = EnsureAllocation(); r < 0) return r;
  const uint64_t cs = snap_.chunk_size;
  uint64_t budget = source_.cache().capacity() / 2;  // advisory: never thrash the cache
  for (uint64_t c = offset / cs; c * cs < offset + length && budget >= cs; ++c) {
    if (!data_chunks_[c] || source_.cache().Contains({snap_.id, c})) continue;
    std::string chunk;
    Status st = source_.snapshots().ReadChunk(snap_, c, &chunk);
    if (!st.ok()) return ToErrno(st);
    source_.cache().Insert({snap_.id, c}, std::move(chunk));
    budget -= cs;
  }
  return 0;
}

void SnapshotExport::Read(uint64_t offset, std::span<uint8_t> buf, nbd::Completion& done) noexcept {
  // Deleted: fail, even where the cache or the allocation could still answer (docs/NBD.md).
  // Reads from the store check again after reading (SnapshotManager::ReadChunk).
  if (Gone()) return done.Complete(-ESHUTDOWN);
  if (allocation_loaded_.load(std::memory_order_acquire) && TryReadCached(offset, buf))
    return done.Complete(0);
  OffLoop(done, [this, offset, buf] { return ReadBlocking(offset, buf); });
}

void SnapshotExport::Write(uint64_t, std::span<const uint8_t>, bool,
                           nbd::Completion& done) noexcept {
  done.Complete(-EPERM);
}

void SnapshotExport::Flush(nbd::Completion& done) noexcept {
  done.Complete(0);
}

void SnapshotExport::Trim(uint64_t, uint64_t, bool, nbd::Completion& done) noexcept {
  done.Complete(-EPERM);
}

void SnapshotExport::Zero(uint64_t, uint64_t, nbd::ZeroFlags, nbd::Completion& done) noexcept {
  done.Complete(-EPERM);
}

void SnapshotExport::Cache(uint64_t offset, uint64_t length, nbd::Completion& done) noexcept {
  if (Gone()) return done.Complete(-ESHUTDOWN);
  OffLoop(done, [this, offset, length] { return CacheBlocking(offset, length); });
}

void SnapshotExport::Extents(size_t context, uint64_t offset, uint64_t length, bool one,
                             std::vector<nbd::Extent>& out) const noexcept {
  const uint64_t cs = snap_.chunk_size, end = std::min(offset + length, snap_.size);
  const std::vector<uint64_t>* changed = context ? &*changed_[(context - 1) / 2] : nullptr;
  // Flags of chunk c, and the first chunk after c whose flags may differ.
  auto flags_at = [&](uint64_t c, uint64_t& next) -> uint32_t {
    if (!changed) {
      next = c + 1;
      return data_chunks_[c] ? 0 : (nbd::kStateHole | nbd::kStateZero);
    }
    auto it = std::lower_bound(changed->begin(), changed->end(), c);
    if (it != changed->end() && *it == c) {
      next = c + 1;
      return 1;  // dirty: changed since the older snapshot
    }
    next = it == changed->end() ? UINT64_MAX : *it;  // clean up to the next changed chunk
    return 0;
  };
  uint64_t pos = offset;
  while (pos < end) {
    uint64_t next = 0;
    const uint32_t f = flags_at(pos / cs, next);
    uint64_t run_end = next >= end / cs + 1 ? end : std::min(end, next * cs);
    // Extend the run over following chunks with the same flags.
    while (run_end < end) {
      uint64_t n2 = 0;
      if (flags_at(run_end / cs, n2) != f) break;
      run_end = n2 >= end / cs + 1 ? end : std::min(end, n2 * cs);
    }
    if (!out.empty() && out.back().flags == f) {
      out.back().length += run_end - pos;
    } else {
      if (out.size() >= kMaxExtents) break;
      out.push_back({run_end - pos, f});
    }
    pos = run_end;
    if (one) break;
  }
}

void SnapshotExport::BlockStatus(size_t context, uint64_t offset, uint64_t length, bool one,
                                 std::vector<nbd::Extent>& out, nbd::Completion& done) noexcept {
  if (context >= contexts_.size()) return done.Complete(-EINVAL);
  if (Gone()) return done.Complete(-ESHUTDOWN);
  const bool ready = context == 0
                         ? allocation_loaded_.load(std::memory_order_acquire)
                         : changed_loaded_[(context - 1) / 2]->load(std::memory_order_acquire);
  if (ready) {
    Extents(context, offset, length, one, out);
    return done.Complete(0);
  }
  std::vector<nbd::Extent>* o = &out;
  OffLoop(done, [this, context, offset, length, one, o] {
    int r = context == 0 ? EnsureAllocation() : EnsureChanged((context - 1) / 2);
    if (r < 0) return r;
    if (Gone()) return -ESHUTDOWN;  // the maps may have been loaded after its entries went
    Extents(context, offset, length, one, *o);
    return 0;
  });
}

}  // namespace blocksnap::io
