// corrupt_chunk: test helper that damages one stored chunk of a stopped blocksnapd's RocksDB.
//
//   corrupt_chunk DB_DIR [HASH_HEX]
//
// Overwrites the value of one key of column family `chunks` (HASH_HEX, else the first key)
// with the same bytes, the first one inverted, and prints the chunk's hash (hex) on stdout.
// The database is opened exactly as blocksnapd opens it (blocksnap::Db). Only for tests
// (tests/integration/test_snapshot_corruption.py): the daemon must not be running.
#include <cstdio>
#include <memory>
#include <string>

#include "store/db.h"

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
  auto db = blocksnap::Db::Open(argv[1]);
  if (!db.ok()) return Die(db.status().message());
  std::string key, value;
  if (argc == 3) {
    key = Unhex(argv[2]);
    auto got = (*db)->Get(Cf::kChunks, key);
    if (!got.ok()) return Die(got.status().message());
    if (!*got) return Die("no chunk " + std::string(argv[2]));
    value = **got;
  } else {
    bool found = false;
    blocksnap::Status st =
        (*db)->ScanPrefix(Cf::kChunks, "", [&](std::string_view k, std::string_view v) {
          key = k;
          value = v;
          found = true;
          return false;
        });
    if (!st.ok()) return Die(st.message());
    if (!found) return Die("no chunks stored");
  }
  if (!value.empty()) value[0] = static_cast<char>(~value[0]);
  if (blocksnap::Status st = (*db)->Put(Cf::kChunks, key, value); !st.ok())
    return Die(st.message());
  std::printf("%s\n", Hex(key).c_str());
  return 0;
}
