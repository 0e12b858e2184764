#include "util/utf8.h"

#include <cstdint>

namespace blocksnap {
namespace {

// The length of the valid character at s[i], or 0 when the byte there starts none.
size_t CharLength(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t b = byte(i);
  if (b == 0) return 0;
  if (b < 0x80) return 1;
  size_t len = 0;
  uint32_t c = 0;
  if ((b & 0xE0) == 0xC0) {
    len = 2;
    c = b & 0x1F;
  } else if ((b & 0xF0) == 0xE0) {
    len = 3;
    c = b & 0x0F;
  } else if ((b & 0xF8) == 0xF0) {
    len = 4;
    c = b & 0x07;
  } else {
    return 0;  // a continuation byte or 0xF8..0xFF
  }
  if (s.size() - i < len) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    c = (c << 6) | (byte(i + k) & 0x3F);
  }
  const size_t shortest = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
  if (len != shortest) return 0;             // overlong
  if (c > 0x10FFFF) return 0;                // beyond Unicode
  if (c >= 0xD800 && c <= 0xDFFF) return 0;  // UTF-16 surrogates
  if (c >= 0xFDD0 && c <= 0xFDEF) return 0;  // noncharacters (sd-bus refuses them)
  if ((c & 0xFFFE) == 0xFFFE) return 0;      // U+xxFFFE, U+xxFFFF
  return len;
}

}  // namespace

bool IsValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = CharLength(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string ValidUtf8(std::string_view s) {
  if (IsValidUtf8(s)) return std::string(s);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() + 16);
  for (size_t i = 0; i < s.size();) {
    if (const size_t n = CharLength(s, i); n > 0) {
      out.append(s.substr(i, n));
      i += n;
      continue;
    }
    const auto b = static_cast<uint8_t>(s[i++]);
    out += "\\x";
    out += kHex[b >> 4];
    out += kHex[b & 0xF];
  }
  return out;
}

}  // namespace blocksnap
