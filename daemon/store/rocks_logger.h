// RocksDB's own log lines (warnings and errors: a failed write, a background error, a
// stall), sent to the daemon's log (journal) instead of the `LOG` file RocksDB would keep in
// the data dir.
//
// Why not that file: on a full disk its writer fails like any other, and Debian's RocksDB
// 7.8 (built with assertions) aborts the process on the next line written to a file writer
// that has failed before. The first line after ENOSPC is the report of the failed write
// itself, so a full data disk would kill the daemon instead of failing one request with
// ENOSPC.
#pragma once

#include <rocksdb/env.h>

#include <cstdarg>
#include <memory>

namespace blocksnap {

class RocksLogger final : public rocksdb::Logger {
 public:
  // Lines below WARN (flush and compaction chatter) are dropped.
  RocksLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}

  void Logv(const char* format, va_list ap) override;
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override;
};

}  // namespace blocksnap
