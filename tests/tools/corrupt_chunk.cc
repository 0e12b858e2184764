// corrupt_chunk: test helper that damages one stored chunk of a stopped blocksnapd's RocksDB.
//
//   corrupt_chunk DB_DIR [HASH_HEX]
//
// Makes the bytes of one stored chunk (HASH_HEX, else the first in CF refs) its own bytes with
// the first one inverted (DamageChunk, damage_chunk.h), and prints the chunk's hash (hex).
// The database is opened exactly as blocksnapd opens it (blocksnap::Db). Only for tests
// (tests/integration/test_snapshot_corruption.py): the daemon must not be running.
#include <cstdio>
#include <memory>
#include <string>

#include "damage_chunk.h"
#include "store/db.h"
#include "util/logging.h"

namespace {

std::string Hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string Unhex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

int Die(const std::string& message) {
  std::fprintf(stderr, "corrupt_chunk: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using blocksnap::Cf;
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: corrupt_chunk DB_DIR [HASH_HEX]\n");
    return 2;
  }
  // The store's log lines (RocksDB's warnings) to stderr: stdout carries the result.
  blocksnap::SetUpLogging();
  auto db = blocksnap::Db::Open(argv[1]);
  if (!db.ok()) return Die(db.status().message());
  std::string key;
  if (argc == 3) {
    key = Unhex(argv[2]);
  } else {
    // The first chunk stored: in CF refs, chunk keys are the 32-byte hashes.
    blocksnap::Status st =
        (*db)->ScanPrefix(Cf::kRefs, "", [&](std::string_view k, std::string_view) {
          if (k.size() != blocksnap::kHashSize) return true;
          key = k;
          return false;
        });
    if (!st.ok()) return Die(st.message());
    if (key.empty()) return Die("no chunks stored");
  }
  blocksnap::Hash hash;
  if (!blocksnap::HashFromBytes(key, hash)) return Die("not a chunk hash: " + Hex(key));
  if (blocksnap::Status st = blocksnap::test::DamageChunk(**db, hash); !st.ok())
    return Die(st.message());
  std::printf("%s\n", Hex(key).c_str());
  return 0;
}
