#include "volume/dirty_bitmap.h"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <new>

namespace blocksnap {
namespace {

// From this size on a bitmap gets its own mapping (O(1), lazily zeroed pages); below, calloc.
constexpr uint64_t kMapBytes = 64 << 10;

}  // namespace

AtomicBitmap::AtomicBitmap(uint64_t bits) : bits_(bits), words_(nullptr), mapped_(false) {
  const uint64_t bytes = std::max<uint64_t>(WordCount(bits), 1) * sizeof(uint64_t);
  if (bytes >= kMapBytes) {
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    words_ = static_cast<uint64_t*>(p);
    mapped_ = true;
  } else {
    words_ = static_cast<uint64_t*>(std::calloc(bytes / sizeof(uint64_t), sizeof(uint64_t)));
    if (!words_) throw std::bad_alloc();
  }
}

AtomicBitmap::~AtomicBitmap() {
  const uint64_t bytes = std::max<uint64_t>(WordCount(bits_), 1) * sizeof(uint64_t);
  if (mapped_)
    ::munmap(words_, bytes);
  else
    std::free(words_);
}

void AtomicBitmap::ClearAll() {
  for (uint64_t w = 0; w < words(); ++w) At(w).store(0, std::memory_order_release);
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
