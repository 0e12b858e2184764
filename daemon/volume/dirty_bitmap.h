// AtomicBitmap: one bit per chunk, lock-free.
//
// The dirty bitmap of a volume is read on every write (is this chunk already dirty?) by any
// NBD loop thread, so a test is one relaxed-free acquire load and a set is one fetch_or; no
// lock, no allocation. Also used for a snapshot's frozen and copied sets.
//
// A new bitmap costs O(1) whatever its size: large ones are fresh anonymous mappings, whose
// pages the kernel supplies zeroed on first touch. A 1 TiB volume has 16 Mi chunks, 2 MiB of
// bits; zeroing them eagerly cost ~60 µs inside the snapshot pause, which must not grow with
// the volume. The words are plain uint64_t accessed through std::atomic_ref.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

namespace blocksnap {

class AtomicBitmap {
 public:
  explicit AtomicBitmap(uint64_t bits = 0);
  ~AtomicBitmap();
  AtomicBitmap(const AtomicBitmap&) = delete;
  AtomicBitmap& operator=(const AtomicBitmap&) = delete;

  static uint64_t WordCount(uint64_t bits) { return (bits + 63) / 64; }
  uint64_t size() const { return bits_; }
  uint64_t words() const { return WordCount(bits_); }

  bool Test(uint64_t i) const {
    return (At(i >> 6).load(std::memory_order_acquire) >> (i & 63)) & 1;
  }
  // True when every bit of [first, last] is set. One load when the range is in one word.
  bool TestAll(uint64_t first, uint64_t last) const {
    for (uint64_t w = first >> 6; w <= last >> 6; ++w) {
      uint64_t m = RangeMask(w, first, last);
      if ((At(w).load(std::memory_order_acquire) & m) != m) return false;
    }
    return true;
  }
  // Sets bit i; true when it was clear before (this caller set it).
  bool Set(uint64_t i) {
    uint64_t m = uint64_t{1} << (i & 63);
    return !(At(i >> 6).fetch_or(m, std::memory_order_acq_rel) & m);
  }
  void Clear(uint64_t i) {
    At(i >> 6).fetch_and(~(uint64_t{1} << (i & 63)), std::memory_order_acq_rel);
  }

  uint64_t Word(uint64_t w) const { return At(w).load(std::memory_order_acquire); }
  void OrWord(uint64_t w, uint64_t bits) {
    At(w).fetch_or(bits & ValidMask(w), std::memory_order_acq_rel);
  }
  void SetWord(uint64_t w, uint64_t bits) {
    At(w).store(bits & ValidMask(w), std::memory_order_release);
  }
  void ClearAll();
  void CopyFrom(const AtomicBitmap& o);  // sizes must match
  uint64_t Count() const;
  // The indexes of the set bits, ascending.
  std::vector<uint64_t> SetBits() const;

  // Bits of word w that lie in [first, last].
  static uint64_t RangeMask(uint64_t w, uint64_t first, uint64_t last) {
    uint64_t lo = w == first >> 6 ? (first & 63) : 0;
    uint64_t hi = w == last >> 6 ? (last & 63) : 63;
    uint64_t upper = hi == 63 ? ~uint64_t{0} : (uint64_t{1} << (hi + 1)) - 1;
    return upper & ~((uint64_t{1} << lo) - 1);
  }

 private:
  std::atomic_ref<uint64_t> At(uint64_t w) const { return std::atomic_ref<uint64_t>(words_[w]); }
  // Bits of word w that correspond to existing chunks.
  uint64_t ValidMask(uint64_t w) const {
    uint64_t end = bits_ - w * 64;
    return end >= 64 ? ~uint64_t{0} : (uint64_t{1} << end) - 1;
  }

  uint64_t bits_;
  uint64_t* words_;  // zeroed on allocation; only ever accessed atomically (At)
  bool mapped_;      // words_ is an mmap (else calloc)
};

}  // namespace blocksnap
