// A libFuzzer-compatible driver for builds without clang: runs the target on every seed
// (built-in sessions plus files given on the command line) and on a bounded number of
// deterministic mutations of each, so the normal test suite exercises the fuzz target.
//
//   nbd_fuzz_replay [--iterations N] [--write-seeds DIR] [FILE|CORPUS_DIR...]
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "nbd/request.h"
#include "nbd/wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

using namespace blocksnap::nbd;

std::string Opt(uint32_t option, const std::string& data = {}) {
  std::string s;
  Append64(s, kIHaveOpt);
  Append32(s, option);
  Append32(s, uint32_t(data.size()));
  return s + data;
}

std::string Go(const std::string& name) {
  std::string d;
  Append32(d, uint32_t(name.size()));
  d += name;
  Append16(d, 1);
  Append16(d, kInfoBlockSize);
  return Opt(kOptGo, d);
}

std::string Meta(uint32_t option, const std::string& name, const std::string& query) {
  std::string d;
  Append32(d, uint32_t(name.size()));
  d += name;
  Append32(d, 1);
  Append32(d, uint32_t(query.size()));
  d += query;
  return Opt(option, d);
}

std::string Req(uint16_t type, uint16_t flags, uint64_t off, uint32_t len) {
  Request r{.flags = flags, .type = type, .handle = off ^ len, .offset = off, .length = len};
  uint8_t b[kRequestHeaderSize];
  EncodeRequestHeader(r, b);
  std::string s(reinterpret_cast<char*>(b), sizeof b);
  if (type == kCmdWrite && len <= 8192) s += std::string(len, 'w');
  return s;
}

std::vector<std::string> BuiltinSeeds() {
  std::string flags;
  Append32(flags, kClientFixedNewstyle | kClientNoZeroes);
  std::string requests = Req(kCmdWrite, kCmdFlagFua, 4096, 4096) + Req(kCmdRead, 0, 0, 16384) +
                         Req(kCmdRead, kCmdFlagDf, 512, 512) + Req(kCmdTrim, 0, 0, 4096) +
                         Req(kCmdWriteZeroes, kCmdFlagNoHole, 8192, 4096) +
                         Req(kCmdBlockStatus, kCmdFlagReqOne, 0, 65536) + Req(kCmdFlush, 0, 0, 0) +
                         Req(kCmdCache, 0, 0, 4096) + Req(kCmdRead, 0, 1 << 20, 512) +
                         Req(99, 0, 0, 0) + Req(kCmdDisc, 0, 0, 0);
  std::string structured = flags + Opt(kOptStructuredReply) +
                           Meta(kOptListMetaContext, "disk", "base:") +
                           Meta(kOptSetMetaContext, "disk", "base:allocation") + Go("disk");
  std::string name;
  name += "disk";
  return {
      flags + Opt(kOptList) + Go("disk") + requests,
      structured + requests,
      flags + Opt(kOptExportName, "disk") + requests,
      flags + Opt(kOptInfo, "x") + Opt(12345, "abc") + Go("nope") + Go("ro") + requests,
      flags + Opt(kOptAbort),
      structured + Req(kCmdWrite, 0, 0, kMaxPayload + 1),
  };
}

std::string Mutate(std::string s, std::mt19937_64& rng) {
  int n = 1 + int(rng() % 4);
  for (int i = 0; i < n; ++i) {
    size_t pos = s.empty() ? 0 : rng() % s.size();
    switch (rng() % 5) {
      case 0:  // flip a bit
        if (!s.empty()) s[pos] = char(s[pos] ^ (1 << (rng() % 8)));
        break;
      case 1:  // set an interesting byte
        if (!s.empty()) s[pos] = "\x00\xff\x7f\x80\x01"[rng() % 5];
        break;
      case 2:  // truncate
        s.resize(pos);
        break;
      case 3:  // insert random bytes
        s.insert(pos, std::string(1 + rng() % 8, char(rng())));
        break;
      case 4:  // erase a few bytes
        if (!s.empty()) s.erase(pos, 1 + rng() % 8);
        break;
    }
  }
  return s;
}

void Run(const std::string& s) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

}  // namespace

int main(int argc, char** argv) {
  size_t iterations = 2000;
  std::vector<std::string> seeds = BuiltinSeeds();
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--iterations") && i + 1 < argc) {
      iterations = std::strtoull(argv[++i], nullptr, 10);
    } else if (!std::strcmp(argv[i], "--write-seeds") && i + 1 < argc) {
      std::string dir = argv[++i];
      for (size_t k = 0; k < seeds.size(); ++k) {
        std::ofstream(dir + "/seed-" + std::to_string(k), std::ios::binary) << seeds[k];
      }
      return 0;
    } else {
      // A corpus directory (as libFuzzer takes) or single files.
      std::vector<std::filesystem::path> paths;
      if (std::filesystem::is_directory(argv[i])) {
        for (const auto& e : std::filesystem::directory_iterator(argv[i])) {
          paths.push_back(e.path());
        }
        std::sort(paths.begin(), paths.end());
      } else {
        paths.emplace_back(argv[i]);
      }
      for (const auto& p : paths) {
        std::ifstream f(p, std::ios::binary);
        if (!f) {
          std::fprintf(stderr, "cannot read %s\n", p.c_str());
          return 2;
        }
        seeds.emplace_back(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
      }
    }
  }
  std::mt19937_64 rng(0x6e6264);  // fixed: the run is reproducible
  size_t runs = 0;
  for (const auto& seed : seeds) {
    Run(seed), ++runs;
    for (size_t i = 0; i < iterations; ++i) Run(Mutate(seed, rng)), ++runs;
  }
  std::printf("nbd fuzz replay: %zu inputs from %zu seeds, no failure\n", runs, seeds.size());
  return 0;
}
