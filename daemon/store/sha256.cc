#include "store/sha256.h"

#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace blocksnap {
namespace {

struct MdFree {
  void operator()(EVP_MD* md) const { EVP_MD_free(md); }
};
struct CtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

// Fetched once: an explicitly fetched EVP_MD avoids the implicit per-init provider lookup
// that EVP_sha256() costs in OpenSSL 3.
const EVP_MD* Sha256Md() {
  static const std::unique_ptr<EVP_MD, MdFree> md(EVP_MD_fetch(nullptr, "SHA256", nullptr));
  if (!md) {
    std::fputs("blocksnap: OpenSSL has no SHA-256\n", stderr);
    std::abort();
  }
  return md.get();
}

[[noreturn]] void Fatal(const char* what) {
  std::fprintf(stderr, "blocksnap: OpenSSL %s failed\n", what);
  std::abort();
}

}  // namespace

Hash Sha256(std::span<const uint8_t> data) {
  thread_local std::unique_ptr<EVP_MD_CTX, CtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx) Fatal("EVP_MD_CTX_new");
  Hash out;
  unsigned int len = 0;
  // Re-initialising a context with the same digest reuses its state: no allocation.
  if (EVP_DigestInit_ex2(ctx.get(), Sha256Md(), nullptr) != 1) Fatal("digest init");
  if (EVP_DigestUpdate(ctx.get(), data.data(), data.size()) != 1) Fatal("digest update");
  if (EVP_DigestFinal_ex(ctx.get(), out.data(), &len) != 1 || len != kHashSize)
    Fatal("digest final");
  return out;
}

std::string HashHex(const Hash& h) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s(kHashSize * 2, '0');
  for (size_t i = 0; i < kHashSize; ++i) {
    s[2 * i] = kDigits[h[i] >> 4];
    s[2 * i + 1] = kDigits[h[i] & 15];
  }
  return s;
}

bool HashFromBytes(std::string_view bytes, Hash& out) {
  if (bytes.size() != kHashSize) return false;
  std::memcpy(out.data(), bytes.data(), kHashSize);
  return true;
}

bool IsAllZero(std::span<const uint8_t> data) {
  if (data.empty()) return true;
  // Compare the buffer with itself shifted by one byte: memcmp is vectorised.
  return data[0] == 0 && std::memcmp(data.data(), data.data() + 1, data.size() - 1) == 0;
}

}  // namespace blocksnap
