// The big-endian 64-bit integers that lead the store's keys (volume, chunk, generation ...):
// big endian, so that RocksDB's byte order is numeric order.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace blocksnap {

inline void PutBe64(std::string& s, uint64_t v) {
  for (int i = 7; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// The first 8 bytes of s, which must hold at least 8.
inline uint64_t GetBe64(std::string_view s) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | static_cast<uint8_t>(s[i]);
  return v;
}

}  // namespace blocksnap
