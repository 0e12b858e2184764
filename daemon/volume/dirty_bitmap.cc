#include "volume/dirty_bitmap.h"

#include <bit>

namespace blocksnap {

void AtomicBitmap::ClearAll() {
  for (uint64_t w = 0; w < words(); ++w) words_[w].store(0, std::memory_order_release);
}

void AtomicBitmap::CopyFrom(const AtomicBitmap& o) {
  for (uint64_t w = 0; w < words() && w < o.words(); ++w) SetWord(w, o.Word(w));
}

uint64_t AtomicBitmap::Count() const {
  uint64_t n = 0;
  for (uint64_t w = 0; w < words(); ++w) n += std::popcount(Word(w));
  return n;
}

std::vector<uint64_t> AtomicBitmap::SetBits() const {
  std::vector<uint64_t> out;
  for (uint64_t w = 0; w < words(); ++w) {
    for (uint64_t bits = Word(w); bits; bits &= bits - 1)
      out.push_back(w * 64 + static_cast<uint64_t>(std::countr_zero(bits)));
  }
  return out;
}

}  // namespace blocksnap
