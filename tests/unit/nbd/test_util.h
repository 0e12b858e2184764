// Helpers for byte-exact NBD fixtures.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nbd/wire.h"

namespace blocksnap::nbd::testing {

// Builds wire bytes fluently: Bytes().u32(1).u64(2).str("x").
class Wire {
 public:
  Wire& u16(uint16_t v) { return Append16(s_, v), *this; }
  Wire& u32(uint32_t v) { return Append32(s_, v), *this; }
  Wire& u64(uint64_t v) { return Append64(s_, v), *this; }
  Wire& str(std::string_view v) { return s_.append(v), *this; }
  Wire& zeros(size_t n) { return s_.append(n, '\0'), *this; }
  // An option request: IHAVEOPT, option, length, data.
  Wire& opt(uint32_t option, const std::string& data = {}) {
    return u64(kIHaveOpt).u32(option).u32(uint32_t(data.size())).str(data);
  }
  // An option reply as the server must send it.
  Wire& rep(uint32_t option, uint32_t type, const std::string& data = {}) {
    return u64(kOptReplyMagic).u32(option).u32(type).u32(uint32_t(data.size())).str(data);
  }
  const std::string& bytes() const { return s_; }
  operator std::string() const { return s_; }  // NOLINT: fixtures read better

 private:
  std::string s_;
};

}  // namespace blocksnap::nbd::testing
