// nbd_libnbd_client: issue 3's libnbd C API checks, run against a real blocksnapd by
// tests/integration/test_nbd_c_api.py (not a unit test: it needs a daemon).
//
//   nbd_libnbd_client LIST_URI EXPORT_URI EXPORT
//   e.g. nbd://127.0.0.1:10809 nbd://127.0.0.1:10809/v1 v1
// The export must be a fresh 64 MiB volume. Prints one line per check; exits 1 on the first
// failure with the reason.
#include <libnbd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kSize = 64 * kMiB;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "FAILED: %s (%s)\n", what.c_str(), nbd_get_error() ? nbd_get_error() : "");
  std::exit(1);
}
void Check(bool ok, const std::string& what) {
  if (!ok) Fail(what);
}

struct Handle {
  nbd_handle* h = nbd_create();
  ~Handle() { nbd_close(h); }
  operator nbd_handle*() const { return h; }
};

void Connect(Handle& h, const std::string& uri, bool meta = true) {
  if (meta) Check(nbd_add_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION) == 0, "add_meta_context");
  Check(nbd_connect_uri(h, uri.c_str()) == 0, "connect " + uri);
}

// Extents of base:allocation over [off, off+len): (length, flags) pairs.
std::vector<std::pair<uint64_t, uint32_t>> Extents(nbd_handle* h, uint64_t off, uint64_t len) {
  std::vector<std::pair<uint64_t, uint32_t>> out;
  uint64_t pos = off;
  while (pos < off + len) {
    std::vector<std::pair<uint64_t, uint32_t>> got;
    nbd_extent_callback cb{};
    cb.user_data = &got;
    cb.callback = [](void* user, const char* ctx, uint64_t, uint32_t* e, size_t n, int*) -> int {
      if (std::strcmp(ctx, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0) return 0;
      auto* v = static_cast<std::vector<std::pair<uint64_t, uint32_t>>*>(user);
      for (size_t i = 0; i + 1 < n; i += 2) v->push_back({e[i], e[i + 1]});
      return 0;
    };
    Check(nbd_block_status(h, off + len - pos, pos, cb, 0) == 0, "block_status");
    Check(!got.empty(), "block_status returned no extent");
    for (auto& e : got) {
      out.push_back(e);
      pos += e.first;
    }
  }
  return out;
}

// 1 = all data, 0 = all hole, -1 = mixed.
int Allocated(nbd_handle* h, uint64_t off, uint64_t len) {
  bool data = false, hole = false;
  for (auto& [l, f] : Extents(h, off, len)) (f & LIBNBD_STATE_HOLE ? hole : data) = true;
  return data && hole ? -1 : data ? 1 : 0;
}

std::vector<char> Read(nbd_handle* h, uint64_t off, size_t len) {
  std::vector<char> b(len);
  Check(nbd_pread(h, b.data(), len, off, 0) == 0, "pread");
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s LIST_URI EXPORT_URI EXPORT\n", argv[0]);
    return 2;
  }
  const std::string server = argv[1], uri = argv[2];
  std::mt19937_64 rng(42);
  auto random_bytes = [&](size_t n) {
    std::vector<char> v(n);
    for (auto& c : v) c = char(rng());
    return v;
  };

  {  // list exports
    Handle h;
    Check(nbd_set_opt_mode(h, true) == 0, "set_opt_mode");
    Check(nbd_connect_uri(h, server.c_str()) == 0, "connect for list");
    struct Want {
      const char* name;
      bool found = false;
    } want{argv[3]};
    nbd_list_callback cb{};
    cb.user_data = &want;
    cb.callback = [](void* user, const char* name, const char*) -> int {
      auto* w = static_cast<Want*>(user);
      if (std::strcmp(name, w->name) == 0) w->found = true;
      return 0;
    };
    Check(nbd_opt_list(h, cb) >= 1, "opt_list");
    Check(want.found, "export listed");
    nbd_opt_abort(h);
    std::puts("ok list exports");
  }

  Handle h;
  Connect(h, uri);
  Check(nbd_get_size(h) == int64_t(kSize), "size");
  Check(nbd_get_block_size(h, LIBNBD_SIZE_MINIMUM) == 512, "minimum block size");
  Check(nbd_get_block_size(h, LIBNBD_SIZE_MAXIMUM) == int64_t(32 * kMiB), "maximum block size");
  Check(nbd_get_block_size(h, LIBNBD_SIZE_PREFERRED) >= 4096, "preferred block size");
  Check(nbd_can_multi_conn(h) == 1 && nbd_can_flush(h) == 1 && nbd_can_fua(h) == 1 &&
            nbd_can_trim(h) == 1 && nbd_can_zero(h) == 1,
        "transmission flags");
  std::puts("ok size and block sizes");

  // Random writes (some FUA) and reads verified byte for byte against a model.
  std::vector<char> model(kSize);
  for (int i = 0; i < 300; ++i) {
    size_t len = size_t(512) << (rng() % 12);  // 512 B .. 1 MiB
    uint64_t off = (rng() % ((kSize - len) / 512)) * 512;
    auto data = random_bytes(len);
    Check(nbd_pwrite(h, data.data(), len, off, rng() % 4 ? 0 : LIBNBD_CMD_FLAG_FUA) == 0, "pwrite");
    std::memcpy(model.data() + off, data.data(), len);
  }
  Check(nbd_flush(h, 0) == 0, "flush");
  for (uint64_t off = 0; off < kSize; off += 8 * kMiB) {
    Check(Read(h, off, 8 * kMiB) ==
              std::vector<char>(model.begin() + off, model.begin() + off + 8 * kMiB),
          "read back");
  }
  std::puts("ok random writes and reads verified, flush, FUA");

  // Trim then zeroes read back; zero with and without NO_HOLE and their allocation.
  std::vector<char> ones(4 * kMiB, 1);
  Check(nbd_pwrite(h, ones.data(), ones.size(), 0, 0) == 0, "pwrite ones");
  Check(Allocated(h, 0, 4 * kMiB) == 1, "written range is data");
  Check(nbd_trim(h, kMiB, 0, 0) == 0, "trim");
  Check(Read(h, 0, kMiB) == std::vector<char>(kMiB, 0), "trimmed reads zero");
  Check(Allocated(h, 0, kMiB) == 0, "trimmed range is a hole");
  Check(nbd_zero(h, kMiB, kMiB, 0) == 0, "zero");
  Check(Read(h, kMiB, kMiB) == std::vector<char>(kMiB, 0), "zeroed reads zero");
  Check(Allocated(h, kMiB, kMiB) == 0, "zero without NO_HOLE leaves a hole");
  Check(nbd_zero(h, kMiB, 2 * kMiB, LIBNBD_CMD_FLAG_NO_HOLE) == 0, "zero NO_HOLE");
  Check(Read(h, 2 * kMiB, kMiB) == std::vector<char>(kMiB, 0), "NO_HOLE reads zero");
  Check(Read(h, 3 * kMiB, kMiB) == std::vector<char>(kMiB, 1), "neighbour untouched");
  std::puts("ok trim, zero, NO_HOLE");

  // Block status over holes and data.
  Check(nbd_trim(h, kSize - 8 * kMiB, 8 * kMiB, 0) == 0, "trim tail");
  std::vector<char> d(kMiB, 'd');
  Check(nbd_pwrite(h, d.data(), kMiB, kSize - 4 * kMiB, 0) == 0, "pwrite tail");
  auto ext = Extents(h, kSize - 8 * kMiB, 8 * kMiB);
  std::vector<std::pair<uint64_t, uint32_t>> want = {
      {4 * kMiB, LIBNBD_STATE_HOLE | LIBNBD_STATE_ZERO},
      {kMiB, 0},
      {3 * kMiB, LIBNBD_STATE_HOLE | LIBNBD_STATE_ZERO}};
  Check(ext == want, "block status over holes and data");
  std::puts("ok block status");

  // 64 aio requests in flight at once.
  std::vector<std::vector<char>> blocks;
  for (int i = 0; i < 64; ++i) blocks.push_back(random_bytes(64 * 1024));
  nbd_completion_callback none{};
  for (int i = 0; i < 64; ++i) {
    Check(nbd_aio_pwrite(h, blocks[i].data(), blocks[i].size(), uint64_t(i) * 128 * 1024, none, 0) >
              0,
          "aio_pwrite");
  }
  Check(nbd_aio_in_flight(h) == 64, "64 in flight");
  while (nbd_aio_in_flight(h) > 0) Check(nbd_poll(h, -1) >= 0, "poll");
  std::vector<std::vector<char>> back(64, std::vector<char>(64 * 1024));
  for (int i = 0; i < 64; ++i) {
    Check(nbd_aio_pread(h, back[i].data(), back[i].size(), uint64_t(i) * 128 * 1024, none, 0) > 0,
          "aio_pread");
  }
  Check(nbd_aio_in_flight(h) == 64, "64 reads in flight");
  while (nbd_aio_in_flight(h) > 0) Check(nbd_poll(h, -1) >= 0, "poll");
  Check(back == blocks, "aio data verified");
  std::puts("ok 64 aio in flight");

  // 4 connections (multi-conn) write disjoint regions; every one reads the same image.
  auto image_of = [](nbd_handle* c) {
    std::vector<char> image = Read(c, 0, 32 * kMiB);
    auto rest = Read(c, 32 * kMiB, 32 * kMiB);
    image.insert(image.end(), rest.begin(), rest.end());
    return image;
  };
  std::vector<char> expect = image_of(h);
  std::vector<Handle> conns(4);
  for (auto& c : conns) Connect(c, uri, false);
  for (size_t i = 0; i < conns.size(); ++i) {
    for (int k = 0; k < 8; ++k) {
      uint64_t off = i * (kSize / 4) + uint64_t(k) * 2 * kMiB;
      auto data = random_bytes(256 * 1024);
      Check(nbd_pwrite(conns[i], data.data(), data.size(), off, 0) == 0, "multi-conn pwrite");
      std::memcpy(expect.data() + off, data.data(), data.size());
    }
  }
  Check(nbd_flush(conns[3], 0) == 0, "flush on one connection");
  for (auto& c : conns) Check(image_of(c) == expect, "every connection reads the same image");
  std::puts("ok multi-conn");
  return 0;
}
