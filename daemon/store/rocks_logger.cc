#include "store/rocks_logger.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstring>

namespace blocksnap {

void RocksLogger::Logv(const char* format, va_list ap) {
  Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
}

void RocksLogger::Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) {
  if (level < GetInfoLogLevel() || level == rocksdb::InfoLogLevel::HEADER_LEVEL) return;
  // RocksDB's lines are short; a longer one is cut, never allocated for.
  char line[1024];
  std::vsnprintf(line, sizeof line, format, ap);
  const spdlog::level::level_enum to =
      level >= rocksdb::InfoLogLevel::ERROR_LEVEL  ? spdlog::level::err
      : level == rocksdb::InfoLogLevel::WARN_LEVEL ? spdlog::level::warn
                                                   : spdlog::level::info;
  // Said at every start once packs exist (they are ingested files, which carry no unique id
  // in Debian's 7.8): harmless, so not a warning in every start's log.
  if (std::strstr(line, "opened without unique ID to verify")) {
    spdlog::debug("rocksdb: {}", line);
    return;
  }
  spdlog::log(to, "rocksdb: {}", line);
}

}  // namespace blocksnap
