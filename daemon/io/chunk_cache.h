// ChunkCache: a byte-bounded LRU of chunks read from the store, shared by every snapshot
// export (and every loop and worker thread). Keyed by (snapshot id, chunk index): a hit needs
// no RocksDB call at all, so the io loop can serve it inline.
//
// Entries are immutable (a completed snapshot never changes); a chunk bigger than the whole
// budget is simply not kept. Thread-safe: one mutex, held only for the map/list update and
// the copy out of a hit.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace blocksnap::io {

class ChunkCache {
 public:
  struct Key {
    uint64_t snapshot = 0;
    uint64_t chunk = 0;
    bool operator==(const Key& o) const { return snapshot == o.snapshot && chunk == o.chunk; }
  };

  explicit ChunkCache(uint64_t capacity_bytes) : capacity_(capacity_bytes) {}

  // Copies bytes [offset, offset+len) of the cached chunk into dst and marks it recently
  // used; false (dst untouched) when the chunk is not cached or shorter than offset+len.
  bool CopyOut(const Key& key, uint64_t offset, uint64_t len, uint8_t* dst);
  bool Contains(const Key& key) const;
  // Adds (or refreshes) a chunk, evicting the least recently used ones beyond the budget.
  void Insert(const Key& key, std::string data);

  uint64_t bytes() const;
  uint64_t capacity() const { return capacity_; }
  size_t entries() const;

 private:
  struct KeyHash {
    size_t operator()(const Key& k) const noexcept {
      return std::hash<uint64_t>()(k.snapshot * 0x9E3779B97F4A7C15ull ^ k.chunk);
    }
  };
  struct Entry {
    Key key;
    std::string data;
  };
  using List = std::list<Entry>;

  const uint64_t capacity_;
  mutable std::mutex mu_;
  List lru_;  // front = most recently used
  std::unordered_map<Key, List::iterator, KeyHash> index_;
  uint64_t bytes_ = 0;
};

}  // namespace blocksnap::io
