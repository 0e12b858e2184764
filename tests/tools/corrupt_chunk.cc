// corrupt_chunk: test helper that damages one stored chunk of a stopped blocksnapd's RocksDB.
//
//   corrupt_chunk DB_DIR [HASH_HEX]
//
// Overwrites the value of one key of column family `chunks` (HASH_HEX, else the first key)
// with the same bytes, the first one inverted, and prints the chunk's hash (hex) on stdout.
// Only for tests (tests/integration/test_snapshot_corruption.py): the daemon must not run.
// Automatic compactions are off so that the `refs` merge operands, whose operator this tool
// does not know, are never rewritten.
#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

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

int Die(const std::string& what, const rocksdb::Status& s) {
  std::fprintf(stderr, "corrupt_chunk: %s: %s\n", what.c_str(), s.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: corrupt_chunk DB_DIR [HASH_HEX]\n");
    return 2;
  }
  const std::string dir = argv[1];
  rocksdb::Options options;
  options.disable_auto_compactions = true;
  std::vector<std::string> names;
  rocksdb::Status s = rocksdb::DB::ListColumnFamilies(options, dir, &names);
  if (!s.ok()) return Die("listing column families of " + dir, s);
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const std::string& n : names) {
    rocksdb::ColumnFamilyOptions cf;
    cf.disable_auto_compactions = true;
    cfs.emplace_back(n, cf);
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  s = rocksdb::DB::Open(options, dir, cfs, &handles, &raw);
  if (!s.ok()) return Die("opening " + dir, s);
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::ColumnFamilyHandle* chunks = nullptr;
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == "chunks") chunks = handles[i];
  int rc = 0;
  if (chunks == nullptr) {
    std::fprintf(stderr, "corrupt_chunk: no column family 'chunks' in %s\n", dir.c_str());
    rc = 1;
  } else {
    std::string key, value;
    if (argc == 3) {
      key = Unhex(argv[2]);
      s = db->Get(rocksdb::ReadOptions(), chunks, key, &value);
    } else {
      std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), chunks));
      it->SeekToFirst();
      if (it->Valid()) {
        key = it->key().ToString();
        value = it->value().ToString();
      }
      s = it->status();
      if (s.ok() && !it->Valid()) s = rocksdb::Status::NotFound("no chunks stored");
    }
    if (s.ok() && !value.empty()) value[0] = static_cast<char>(~value[0]);
    if (s.ok()) s = db->Put(rocksdb::WriteOptions(), chunks, key, value);
    if (s.ok()) s = db->FlushWAL(true);
    if (!s.ok()) {
      rc = Die("damaging a chunk", s);
    } else {
      std::printf("%s\n", Hex(key).c_str());
    }
  }
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  s = db->Close();
  if (!s.ok() && rc == 0) rc = Die("closing", s);
  return rc;
}
