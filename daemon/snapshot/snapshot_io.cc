#include "snapshot/snapshot_io.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

namespace blocksnap {
namespace {

// Where a dump goes, from what the fd is (see DumpSnapshot in the header).
enum class Sink {
  kFile,    // regular file: sized with ftruncate, only the chunks with data written (holes)
  kDevice,  // block device: every byte written at its offset, zeros included
  kStream,  // pipe, socket, character device, O_APPEND file: every byte, in order, write()
};

// How much a stream takes now without blocking: for a pipe its free space, for anything
// else `want` (a socket is written with MSG_DONTWAIT instead). 0 after waiting up to 200 ms
// for room; Busy once `stop` is set.
Result<size_t> StreamRoom(int fd, size_t want, const std::atomic<bool>* stop) {
  pollfd p{fd, POLLOUT, 0};
  int r = ::poll(&p, 1, 200);
  if (stop && stop->load(std::memory_order_relaxed))
    return Busy("the dump was cancelled: blocksnapd is stopping");
  if (r < 0 && errno != EINTR) return FromErrno(errno, "waiting to write");
  if (r <= 0) return size_t{0};
  const int capacity = ::fcntl(fd, F_GETPIPE_SZ);
  if (capacity < 0) return want;  // not a pipe
  int queued = 0;
  if (::ioctl(fd, FIONREAD, &queued) != 0) return want;
  return std::min<size_t>(want, static_cast<size_t>(std::max(capacity - queued, 0)));
}

// Writes len bytes at off (kFile, kDevice: pwrite) or at the fd's position (kStream: write,
// never more than the stream has room for, see StreamRoom). A caller's fd may be
// non-blocking: EAGAIN goes back to StreamRoom.
Status WriteAll(int fd, Sink sink, const char* data, uint64_t len, uint64_t off,
                const std::atomic<bool>* stop) {
  while (len > 0) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(len, uint64_t{1} << 30));
    if (sink == Sink::kStream) {
      BS_ASSIGN_OR_RETURN(want, StreamRoom(fd, want, stop));
      if (want == 0) continue;
    }
    ssize_t n = sink != Sink::kStream ? ::pwrite(fd, data, want, static_cast<off_t>(off))
                                      : ::send(fd, data, want, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sink == Sink::kStream && n < 0 && errno == ENOTSOCK) n = ::write(fd, data, want);
    if (n < 0 && errno == EINTR) continue;
    // Only a stream can be non-blocking; StreamRoom waits for it (and checks `stop`).
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && sink == Sink::kStream) continue;
    if (n < 0) return FromErrno(errno, "writing at byte " + std::to_string(off));
    if (n == 0) return IOError("writing at byte " + std::to_string(off) + ": no progress");
    data += n;
    len -= static_cast<uint64_t>(n);
    off += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

// Zeros for [from, to) (kDevice, kStream; a kFile has holes there).
Status WriteZeros(int fd, Sink sink, uint64_t from, uint64_t to, const std::atomic<bool>* stop) {
  static const std::string kZeros(1 << 20, '\0');
  while (from < to) {
    const uint64_t n = std::min<uint64_t>(to - from, kZeros.size());
    BS_RETURN_IF_ERROR(WriteAll(fd, sink, kZeros.data(), n, from, stop));
    from += n;
  }
  return Status::Ok();
}

// What fd is, and whether a dump can go there.
Result<Sink> SinkOf(int fd, uint64_t size) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return FromErrno(errno, "the dump fd");
  const int mode = flags & O_ACCMODE;
  if ((flags & O_PATH) != 0 || (mode != O_WRONLY && mode != O_RDWR))
    return InvalidArgument("the dump fd is not open for writing (open it O_WRONLY or O_RDWR)");
  struct stat st {};
  if (::fstat(fd, &st) != 0) return FromErrno(errno, "the dump fd");
  if (S_ISREG(st.st_mode) && (flags & O_APPEND) == 0) return Sink::kFile;
  if (S_ISBLK(st.st_mode)) {
    uint64_t bytes = 0;
    if (::ioctl(fd, BLKGETSIZE64, &bytes) != 0) return FromErrno(errno, "sizing the dump device");
    if (bytes < size)
      return InvalidArgument("the dump device holds " + std::to_string(bytes) +
                             " bytes, the snapshot " + std::to_string(size));
    return Sink::kDevice;
  }
  if (S_ISDIR(st.st_mode)) return InvalidArgument("the dump fd is a directory");
  return Sink::kStream;
}

Status WithChunk(const Status& st, uint64_t chunk) {
  return st.WithContext("chunk " + std::to_string(chunk));
}

}  // namespace

Status DumpSnapshot(BlockMap& map, ChunkStore& store, const SnapshotRecord& snap, int fd,
                    const std::atomic<bool>* stop, const std::function<Status()>& still_valid) {
  Result<Sink> sink = SinkOf(fd, snap.size);
  if (!sink.ok()) return sink.status().WithContext("dumping snapshot " + snap.IdString());
  auto run = [&]() -> Status {
    // A file's old contents go, then ftruncate to the full size: every chunk left unwritten
    // below is a hole.
    if (*sink == Sink::kFile &&
        (::ftruncate(fd, 0) != 0 || ::ftruncate(fd, static_cast<off_t>(snap.size)) != 0))
      return FromErrno(errno, "sizing the dump file");
    std::string buf;
    uint64_t next = 0;  // kDevice, kStream: the bytes before it are written
    BS_RETURN_IF_ERROR(
        map.ForEachAsOf(snap.volume_id, snap.version, [&](uint64_t c, const MapValue& v) -> Status {
          if (v.zero) return Status::Ok();
          uint64_t off = c * snap.chunk_size;
          if (off >= snap.size) return Status::Ok();
          BS_RETURN_IF_ERROR(WithChunk(store.Get(v.hash, &buf), c));
          uint64_t len = std::min<uint64_t>(buf.size(), snap.size - off);
          if (*sink != Sink::kFile) BS_RETURN_IF_ERROR(WriteZeros(fd, *sink, next, off, stop));
          next = off + len;
          return WriteAll(fd, *sink, buf.data(), len, off, stop);
        }));
    if (*sink != Sink::kFile) BS_RETURN_IF_ERROR(WriteZeros(fd, *sink, next, snap.size, stop));
    if (*sink != Sink::kStream && ::fsync(fd) != 0) return FromErrno(errno, "syncing the dump");
    return Status::Ok();
  };
  Status st = run();
  // Whatever run() found, including a chunk gone missing, an invalid source explains it.
  if (still_valid)
    if (Status v = still_valid(); !v.ok()) st = v;
  // No partial image left looking whole: a file is emptied (a stream cannot take back what
  // it sent; a device keeps what was written).
  if (!st.ok() && *sink == Sink::kFile && ::ftruncate(fd, 0) != 0)
    st =
        Status(st.code(), st.message() + " (emptying the dump file: " + std::strerror(errno) + ")");
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
        // An unreadable chunk (its pack file missing or damaged: IOError) is as bad as a
        // corrupt one, and says nothing of the others: each is listed, and verify goes on.
        if (st.code() == Code::kCorruption || st.code() == Code::kNotFound ||
            st.code() == Code::kIOError) {
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
