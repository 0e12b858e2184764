#include "snapshot/snapshot_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "util/unique_fd.h"

namespace blocksnap {
namespace {

Status PwriteAll(int fd, const char* data, uint64_t len, uint64_t off, const std::string& path) {
  while (len > 0) {
    ssize_t n = ::pwrite(fd, data, len, static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return FromErrno(errno, "writing " + path);
    data += n;
    len -= static_cast<uint64_t>(n);
    off += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

Status WithChunk(const Status& st, uint64_t chunk) {
  return st.WithContext("chunk " + std::to_string(chunk));
}

}  // namespace

Status DumpSnapshot(BlockMap& map, ChunkStore& store, const SnapshotRecord& snap,
                    const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return FromErrno(errno, "creating " + path);
  auto run = [&]() -> Status {
    // ftruncate first: every chunk left unwritten below is a hole.
    if (::ftruncate(fd.get(), static_cast<off_t>(snap.size)) != 0)
      return FromErrno(errno, "sizing " + path);
    std::string buf;
    BS_RETURN_IF_ERROR(
        map.ForEachAsOf(snap.volume_id, snap.version, [&](uint64_t c, const MapValue& v) -> Status {
          if (v.zero) return Status::Ok();
          uint64_t off = c * snap.chunk_size;
          if (off >= snap.size) return Status::Ok();
          BS_RETURN_IF_ERROR(WithChunk(store.Get(v.hash, &buf), c));
          uint64_t len = std::min<uint64_t>(buf.size(), snap.size - off);
          return PwriteAll(fd.get(), buf.data(), len, off, path);
        }));
    if (::fsync(fd.get()) != 0) return FromErrno(errno, "syncing " + path);
    return Status::Ok();
  };
  Status st = run();
  if (!st.ok()) ::unlink(path.c_str());
  return st.WithContext("dumping snapshot " + snap.IdString());
}

Result<VerifyReport> VerifySnapshot(BlockMap& map, ChunkStore& store, const SnapshotRecord& snap) {
  VerifyReport report;
  std::string buf;
  BS_RETURN_IF_ERROR(
      map.ForEachAsOf(snap.volume_id, snap.version, [&](uint64_t c, const MapValue& v) -> Status {
        if (v.zero) return Status::Ok();
        report.chunks_checked++;
        Status st = store.Get(v.hash, &buf);
        if (st.code() == Code::kCorruption || st.code() == Code::kNotFound) {
          report.bad.push_back({c, HashHex(v.hash), st.message()});
          return Status::Ok();
        }
        return st;
      }));
  return report;
}

Status ReadSnapshotChunk(BlockMap& map, ChunkStore& store, const SnapshotRecord& snap,
                         uint64_t chunk, std::string* out) {
  BS_ASSIGN_OR_RETURN(auto v, map.Lookup(snap.volume_id, chunk, snap.version));
  if (!v || v->zero) {
    out->assign(snap.chunk_size, '\0');
    return Status::Ok();
  }
  return WithChunk(store.Get(v->hash, out), chunk);
}

Status ReadSnapshotRange(BlockMap& map, ChunkStore& store, const SnapshotRecord& snap,
                         uint64_t offset, uint64_t length, char* out, std::string* scratch) {
  if (offset > snap.size || length > snap.size - offset)
    return InvalidArgument("read of " + std::to_string(length) + " bytes at " +
                           std::to_string(offset) + " is past the end of " + snap.IdString());
  const uint64_t cs = snap.chunk_size;
  while (length > 0) {
    const uint64_t c = offset / cs, in = offset % cs, n = std::min(length, cs - in);
    BS_ASSIGN_OR_RETURN(auto v, map.Lookup(snap.volume_id, c, snap.version));
    if (!v || v->zero) {
      std::memset(out, 0, n);
    } else {
      BS_RETURN_IF_ERROR(WithChunk(store.Get(v->hash, scratch), c));
      if (scratch->size() < in + n) return Corruption("chunk " + std::to_string(c) + " is short");
      std::memcpy(out, scratch->data() + in, n);
    }
    out += n;
    offset += n;
    length -= n;
  }
  return Status::Ok();
}

Result<std::vector<uint64_t>> ChangedChunks(BlockMap& map, uint64_t volume, uint64_t from,
                                            uint64_t to) {
  std::vector<uint64_t> out;
  uint64_t cur = UINT64_MAX;
  std::optional<MapValue> at_from, at_to;
  auto settle = [&] {
    if (cur == UINT64_MAX) return;
    bool zero_from = !at_from || at_from->zero, zero_to = !at_to || at_to->zero;
    if (zero_from != zero_to || (!zero_from && at_from->hash != at_to->hash)) out.push_back(cur);
  };
  BS_RETURN_IF_ERROR(map.ForEachEntry(volume, [&](uint64_t c, uint64_t v, const MapValue& val) {
    if (c != cur) {
      settle();
      cur = c;
      at_from.reset();
      at_to.reset();
    }
    if (v <= from) at_from = val;
    if (v <= to) at_to = val;
    return Status::Ok();
  }));
  settle();
  return out;
}

Result<RescanResult> RescanVolume(BlockMap& map, const Volume& volume, AtomicBitmap& dirty,
                                  const AtomicBitmap* not_local) {
  const uint64_t cs = volume.chunk_size();
  const uint64_t chunks = dirty.size();
  // Chunks with data in the sparse file (1 bit each); the others read as zeros.
  std::vector<bool> has_data(chunks, false);
  off_t pos = 0;
  const off_t end = static_cast<off_t>(volume.size());
  while (pos < end) {
    off_t data = ::lseek(volume.fd(), pos, SEEK_DATA);
    if (data < 0 && errno == ENXIO) break;
    if (data < 0) {
      // No SEEK_DATA on this filesystem: treat everything as data.
      std::fill(has_data.begin(), has_data.end(), true);
      break;
    }
    off_t hole = ::lseek(volume.fd(), data, SEEK_HOLE);
    if (hole < 0) hole = end;
    for (uint64_t c = static_cast<uint64_t>(data) / cs;
         c < chunks && c * cs < static_cast<uint64_t>(hole); ++c)
      has_data[c] = true;
    pos = hole;
  }

  RescanResult result;
  std::string buf(cs, '\0');
  // Compares chunk c of the file with its base (the newest entry; nullopt: zeros).
  auto check = [&](uint64_t c, const std::optional<MapValue>& base) -> Status {
    if (not_local && not_local->Test(c)) {
      // Its file reads zeros (a hole until the hydrator fills it), not its bytes.
      result.not_local++;
      return Status::Ok();
    }
    MapValue now = MapValue::Zero();
    if (has_data[c]) {
      uint64_t off = c * cs, len = std::min(cs, volume.size() - off), done = 0;
      while (done < len) {
        ssize_t n =
            ::pread(volume.fd(), buf.data() + done, len - done, static_cast<off_t>(off + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0)
          return FromErrno(errno, "rescanning chunk " + std::to_string(c) + " of " + volume.name());
        if (n == 0) break;
        done += static_cast<uint64_t>(n);
      }
      std::memset(buf.data() + done, 0, cs - done);
      std::span data(reinterpret_cast<const uint8_t*>(buf.data()), cs);
      if (!IsAllZero(data)) now = MapValue::Of(Sha256(data));
      result.chunks_read++;
    }
    if (base ? !(*base == now) : !now.zero) {
      dirty.Set(c);
      result.dirty++;
    }
    return Status::Ok();
  };
  // Merge the map's chunk-ordered stream with the file: no per-chunk table in memory.
  uint64_t next = 0;
  BS_RETURN_IF_ERROR(map.ForEachAsOf(volume.id(), kMaxVersion, [&](uint64_t c, const MapValue& v) {
    if (c >= chunks) return Status::Ok();
    for (; next < c; ++next) BS_RETURN_IF_ERROR(check(next, std::nullopt));
    next = c + 1;
    return check(c, v);
  }));
  for (; next < chunks; ++next) BS_RETURN_IF_ERROR(check(next, std::nullopt));
  return result;
}

}  // namespace blocksnap
