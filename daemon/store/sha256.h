// SHA-256 of chunks, the content address of the chunk store.
//
// Hashing uses OpenSSL's EVP interface with one digest context per thread, created on first
// use and reused for every later call on that thread: no allocation on the snapshot hot path.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace blocksnap {

inline constexpr size_t kHashSize = 32;
using Hash = std::array<uint8_t, kHashSize>;

// The SHA-256 digest of data. Aborts only if OpenSSL itself is unusable (no SHA-256).
Hash Sha256(std::span<const uint8_t> data);
inline Hash Sha256(std::string_view data) {
  return Sha256(std::span(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
}

// 64 lowercase hex digits, as shown to users ("chunk 3f2a…").
std::string HashHex(const Hash& h);

// The raw 32 bytes as a key for RocksDB (no copy).
inline std::string_view HashBytes(const Hash& h) {
  return {reinterpret_cast<const char*>(h.data()), h.size()};
}

// The hash stored in a 32-byte value; false when the size is wrong.
bool HashFromBytes(std::string_view bytes, Hash& out);

// True when every byte is zero (zero chunks are never stored).
bool IsAllZero(std::span<const uint8_t> data);

// std::unordered_* support: the digest is already uniformly distributed.
struct HashHasher {
  size_t operator()(const Hash& h) const noexcept {
    size_t v;
    static_assert(sizeof v <= kHashSize);
    __builtin_memcpy(&v, h.data(), sizeof v);
    return v;
  }
};

}  // namespace blocksnap
