// drop_dirty_state: test helper that deletes a volume's durable dirty state from a stopped
// blocksnapd's RocksDB, as damage or loss would, so that the next start must rescan it.
//
//   drop_dirty_state DB_DIR VOLUME_ID
//
// VOLUME_ID is the volume's id as blocksnapctl shows it (vol-…). The database is opened
// exactly as blocksnapd opens it (blocksnap::Db). Only for tests
// (tests/integration/test_restore_rescan.py): the daemon must not be running.
#include <cstdio>
#include <string>

#include "store/db.h"
#include "util/logging.h"
#include "volume/dirty_state.h"
#include "volume/volume_record.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: drop_dirty_state DB_DIR VOLUME_ID\n");
    return 2;
  }
  auto id = blocksnap::ParseVolumeId(argv[2]);
  if (!id.ok()) {
    std::fprintf(stderr, "drop_dirty_state: %s\n", id.status().message().c_str());
    return 2;
  }
  // The store's log lines (RocksDB's warnings) to stderr: stdout carries the result.
  blocksnap::SetUpLogging();
  auto db = blocksnap::Db::Open(argv[1]);
  if (!db.ok()) {
    std::fprintf(stderr, "drop_dirty_state: %s\n", db.status().message().c_str());
    return 1;
  }
  rocksdb::WriteBatch b;
  blocksnap::StageDeleteDirtyState(**db, b, *id);
  if (blocksnap::Status st = (*db)->Write(b); !st.ok()) {
    std::fprintf(stderr, "drop_dirty_state: %s\n", st.message().c_str());
    return 1;
  }
  return 0;
}
