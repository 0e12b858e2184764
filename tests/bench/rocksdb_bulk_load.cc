// rocksdb_bulk_load: the reference figures for snapshot throughput (issue 8).
//
//   rocksdb_bulk_load MODE FILE DB_DIR [CHUNK_SIZE]
//
// Loads FILE's bytes, in CHUNK_SIZE pieces (default 64 KiB), into a fresh RocksDB at DB_DIR
// opened exactly as blocksnapd opens its store (blocksnap::Db: CF chunks in zstd blob
// files), and prints one line: "<mode> <bytes> <seconds> <MB/s>". Every mode ends durable.
//   raw   keys are chunk numbers, values the bytes; no hashing, no WAL, one flush at the
//         end: the fastest way these bytes get into the chunks CF ("raw bulk load").
//   hash  as raw, plus SHA-256 of every chunk as its key (what content addressing adds).
//   wal   hash, values in a WriteBatch written through the WAL, synced every 32 MiB: how
//         blocksnap stored chunks before the chunk bytes left the WAL.
// Only for benchmarks (tests/bench/snapshot_bench.py); DB_DIR must not exist or be empty.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "store/db.h"
#include "store/sha256.h"

namespace {

int Die(const std::string& message) {
  std::fprintf(stderr, "rocksdb_bulk_load: %s\n", message.c_str());
  return 1;
}

std::string Be64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8) s[static_cast<size_t>(i)] = static_cast<char>(v & 255);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  using blocksnap::Cf;
  if (argc < 4 || argc > 5) {
    std::fprintf(stderr, "usage: rocksdb_bulk_load raw|hash|wal FILE DB_DIR [CHUNK_SIZE]\n");
    return 2;
  }
  const std::string mode = argv[1];
  if (mode != "raw" && mode != "hash" && mode != "wal") return Die("unknown mode " + mode);
  const size_t chunk = argc == 5 ? std::stoull(argv[4]) : 65536;
  int fd = ::open(argv[2], O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Die(std::string("opening ") + argv[2] + ": " + std::strerror(errno));
  auto opened = blocksnap::Db::Open(argv[3]);
  if (!opened.ok()) return Die(opened.status().message());
  blocksnap::Db& db = **opened;

  const auto start = std::chrono::steady_clock::now();
  std::string buf(chunk, '\0');
  rocksdb::WriteBatch batch;
  rocksdb::WriteOptions unlogged;
  unlogged.disableWAL = true;
  uint64_t total = 0;
  for (uint64_t n = 0;; ++n) {
    ssize_t got = ::pread(fd, buf.data(), chunk, static_cast<off_t>(n * chunk));
    if (got < 0) return Die(std::string("reading: ") + std::strerror(errno));
    if (got == 0) break;
    total += static_cast<uint64_t>(got);
    rocksdb::Slice value(buf.data(), static_cast<size_t>(got));
    std::string key;
    if (mode == "raw") {
      key = Be64(n);
    } else {
      key = std::string(
          blocksnap::HashBytes(blocksnap::Sha256(std::string_view(value.data(), value.size()))));
    }
    if (mode == "wal") {
      batch.Put(db.cf(Cf::kChunks), key, value);
      if (batch.GetDataSize() >= (32u << 20)) {
        if (auto st = db.Write(batch, /*sync=*/true); !st.ok()) return Die(st.message());
        batch.Clear();
      }
    } else {
      auto s = db.raw()->Put(unlogged, db.cf(Cf::kChunks), key, value);
      if (!s.ok()) return Die(s.ToString());
    }
  }
  if (batch.Count() > 0)
    if (auto st = db.Write(batch, /*sync=*/true); !st.ok()) return Die(st.message());
  if (mode != "wal") {
    rocksdb::FlushOptions fo;
    fo.wait = true;
    auto s = db.raw()->Flush(fo, db.cf(Cf::kChunks));
    if (!s.ok()) return Die(s.ToString());
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ::close(fd);
  std::printf("%s %llu %.3f %.0f\n", mode.c_str(), static_cast<unsigned long long>(total), secs,
              static_cast<double>(total) / secs / 1e6);
  return 0;
}
