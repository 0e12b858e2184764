#include "io/chunk_cache.h"

#include <cstring>

namespace blocksnap::io {

bool ChunkCache::CopyOut(const Key& key, uint64_t offset, uint64_t len, uint8_t* dst) {
  std::lock_guard lock(mu_);
  auto it = index_.find(key);
  if (it == index_.end()) return false;
  const std::string& data = it->second->data;
  if (offset > data.size() || len > data.size() - offset) return false;
  lru_.splice(lru_.begin(), lru_, it->second);
  std::memcpy(dst, data.data() + offset, len);
  return true;
}

bool ChunkCache::Contains(const Key& key) const {
  std::lock_guard lock(mu_);
  return index_.count(key) != 0;
}

void ChunkCache::Insert(const Key& key, std::string data) {
  if (data.size() > capacity_) return;
  std::lock_guard lock(mu_);
  if (auto it = index_.find(key); it != index_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    return;  // same snapshot + chunk: same bytes
  }
  bytes_ += data.size();
  lru_.push_front(Entry{key, std::move(data)});
  index_.emplace(key, lru_.begin());
  while (bytes_ > capacity_ && !lru_.empty()) {
    Entry& victim = lru_.back();
    bytes_ -= victim.data.size();
    index_.erase(victim.key);
    lru_.pop_back();
  }
}

uint64_t ChunkCache::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

size_t ChunkCache::entries() const {
  std::lock_guard lock(mu_);
  return index_.size();
}

}  // namespace blocksnap::io
