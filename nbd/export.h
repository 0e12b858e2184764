// Export: what the protocol serves. The daemon adapts a volume to it; tests use MemoryExport.
//
// Operations are asynchronous: each takes a Completion that the export calls exactly once
// with 0 or -errno, either inline (a memory export) or later from the thread that owns the
// export (the daemon completes from io_uring CQEs). Buffers passed in stay valid until then.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nbd/wire.h"

namespace blocksnap::nbd {

struct BlockSizes {
  uint32_t minimum = kMinBlockSize;
  uint32_t preferred = 4096;
  uint32_t maximum = kMaxPayload;
};

// What an export can do; the handshake turns it into transmission flags, so every flag
// advertised is one the export implements.
struct ExportInfo {
  uint64_t size = 0;
  bool read_only = false;
  bool can_flush = true;
  bool can_fua = true;
  bool can_trim = true;
  bool can_zero = true;
  bool can_fast_zero = true;
  bool can_cache = true;
  bool can_multi_conn = false;  // all connections see one image and FLUSH covers all
  bool rotational = false;
  BlockSizes block_sizes;
  std::string description;
};

// Transmission flags for info, as sent in NBD_INFO_EXPORT and after NBD_OPT_EXPORT_NAME.
uint16_t TransmissionFlags(const ExportInfo& info, bool structured_replies);

// One run of a block status answer: `length` bytes with the context's `flags`.
struct Extent {
  uint64_t length = 0;
  uint32_t flags = 0;
};

// Flags of Export::Zero, mirroring the command flags.
struct ZeroFlags {
  bool fua = false;
  bool no_hole = false;  // the range must stay allocated
  bool fast = false;     // fail with -ENOTSUP rather than fall back to writing zeroes
};

// Receives the result of one export operation: 0 on success or -errno. Not owned by the
// export; it outlives the operation.
class Completion {
 public:
  virtual void Complete(int result) noexcept = 0;

 protected:
  ~Completion() = default;
};

// Name of the meta context every export supports.
inline constexpr std::string_view kBaseAllocation = "base:allocation";

class Export {
 public:
  virtual ~Export() = default;

  virtual const ExportInfo& info() const = 0;
  // Meta contexts this export answers BLOCK_STATUS for; index i is passed back as `context`.
  // "base:allocation" must be one of them. The daemon adds e.g. "blocksnap:changed:<id>".
  virtual std::vector<std::string> MetaContexts() const { return {std::string(kBaseAllocation)}; }

  // Requests arrive validated: in range, aligned, flags allowed by info().
  virtual void Read(uint64_t offset, std::span<uint8_t> buf, Completion& done) noexcept = 0;
  virtual void Write(uint64_t offset, std::span<const uint8_t> data, bool fua,
                     Completion& done) noexcept = 0;
  virtual void Flush(Completion& done) noexcept = 0;
  virtual void Trim(uint64_t offset, uint64_t length, bool fua, Completion& done) noexcept = 0;
  virtual void Zero(uint64_t offset, uint64_t length, ZeroFlags flags,
                    Completion& done) noexcept = 0;
  virtual void Cache(uint64_t offset, uint64_t length, Completion& done) noexcept = 0;
  // Describes [offset, offset+length) for meta context index `context`: fills `out` (already
  // empty) with at least one extent, starting at offset, in order. May stop early (the
  // client asks again); with `one` set only the first extent is needed.
  virtual void BlockStatus(size_t context, uint64_t offset, uint64_t length, bool one,
                           std::vector<Extent>& out, Completion& done) noexcept = 0;
};

// One line of NBD_OPT_LIST.
struct ExportListing {
  std::string name;
  std::string description;
};

// The set of exports a server offers. Called from the handshake, on the connection's thread.
class ExportCatalog {
 public:
  virtual ~ExportCatalog() = default;
  virtual std::vector<ExportListing> List() = 0;
  // The export of that name, opened for one connection; nullptr when there is none.
  virtual std::unique_ptr<Export> Open(std::string_view name) = 0;
};

}  // namespace blocksnap::nbd
