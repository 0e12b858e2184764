// rocksdb_bulk_load: the reference figures for snapshot throughput (issue 8).
//
//   rocksdb_bulk_load FILE DB_DIR [CHUNK_SIZE]
//
// Loads FILE's bytes, in CHUNK_SIZE pieces (default 64 KiB), into a fresh RocksDB at DB_DIR
// opened exactly as blocksnapd opens its store (blocksnap::Db), and prints one line:
// "<bytes> <seconds> <MB/s>". Keys are chunk numbers; no hashing, no bookkeeping. The bytes
// go into 64 MiB SST files written with CF packs' options (zstd level 1, XXH3), synced and
// ingested: how blocksnap stores snapshot chunks, minus everything but the bytes ("raw bulk
// load"). Durable when it prints.
// Only for benchmarks (tests/bench/snapshot_bench.py); DB_DIR must not exist or be empty.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include <rocksdb/sst_file_writer.h>

#include <filesystem>

#include "store/db.h"
#include "util/logging.h"

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
  if (argc < 3 || argc > 4) {
    std::fprintf(stderr, "usage: rocksdb_bulk_load FILE DB_DIR [CHUNK_SIZE]\n");
    return 2;
  }
  const size_t chunk = argc == 4 ? std::stoull(argv[3]) : 65536;
  int fd = ::open(argv[1], O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Die(std::string("opening ") + argv[1] + ": " + std::strerror(errno));
  // The store's log lines (RocksDB's warnings) to stderr: stdout carries the result.
  blocksnap::SetUpLogging();
  auto opened = blocksnap::Db::Open(argv[2]);
  if (!opened.ok()) return Die(opened.status().message());
  blocksnap::Db& db = **opened;
  std::filesystem::create_directories(db.ingest_dir());

  const auto start = std::chrono::steady_clock::now();
  std::string buf(chunk, '\0');
  std::unique_ptr<rocksdb::SstFileWriter> writer;
  std::string file;
  uint64_t in_file = 0, files = 0;
  auto ingest = [&]() -> rocksdb::Status {
    if (!writer) return rocksdb::Status::OK();
    auto s = writer->Finish();
    writer.reset();
    rocksdb::IngestExternalFileOptions io;
    io.move_files = true;
    if (s.ok()) s = db.raw()->IngestExternalFile(db.cf(Cf::kPacks), {file}, io);
    return s;
  };
  uint64_t total = 0;
  for (uint64_t n = 0;; ++n) {
    ssize_t got = ::pread(fd, buf.data(), chunk, static_cast<off_t>(n * chunk));
    if (got < 0) return Die(std::string("reading: ") + std::strerror(errno));
    if (got == 0) break;
    total += static_cast<uint64_t>(got);
    rocksdb::Slice value(buf.data(), static_cast<size_t>(got));
    if (!writer) {
      writer = std::make_unique<rocksdb::SstFileWriter>(rocksdb::EnvOptions(), db.pack_options(),
                                                        db.cf(Cf::kPacks));
      file = db.ingest_dir() + "/bulk-" + std::to_string(files++) + ".sst";
      if (auto s = writer->Open(file); !s.ok()) return Die(s.ToString());
      in_file = 0;
    }
    if (auto s = writer->Put(Be64(n), value); !s.ok()) return Die(s.ToString());
    if ((in_file += value.size()) >= (64u << 20))
      if (auto s = ingest(); !s.ok()) return Die(s.ToString());
  }
  if (auto s = ingest(); !s.ok()) return Die(s.ToString());
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ::close(fd);
  std::printf("%llu %.3f %.0f\n", static_cast<unsigned long long>(total), secs,
              static_cast<double>(total) / secs / 1e6);
  return 0;
}
