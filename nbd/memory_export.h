// MemoryExport: an in-memory Export that completes every operation inline. Serves the unit
// tests and the fuzz driver; tracks allocation per 4 KiB block so BLOCK_STATUS, TRIM and
// WRITE_ZEROES (+NO_HOLE) can be observed.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nbd/export.h"

namespace blocksnap::nbd {

class MemoryExport final : public Export {
 public:
  static constexpr uint64_t kBlock = 4096;

  explicit MemoryExport(ExportInfo info);

  const ExportInfo& info() const override { return info_; }
  std::vector<std::string> MetaContexts() const override { return contexts_; }
  void Read(uint64_t offset, std::span<uint8_t> buf, Completion& done) noexcept override;
  void Write(uint64_t offset, std::span<const uint8_t> data, bool fua,
             Completion& done) noexcept override;
  void Flush(Completion& done) noexcept override;
  void Trim(uint64_t offset, uint64_t length, bool fua, Completion& done) noexcept override;
  void Zero(uint64_t offset, uint64_t length, ZeroFlags flags, Completion& done) noexcept override;
  void Cache(uint64_t offset, uint64_t length, Completion& done) noexcept override;
  void BlockStatus(size_t context, uint64_t offset, uint64_t length, bool one,
                   std::vector<Extent>& out, Completion& done) noexcept override;

  bool allocated(uint64_t offset) const { return allocated_[offset / kBlock]; }
  // Makes every later operation fail with -err (0 turns it off): tests the error mapping.
  void set_fail(int err) { fail_ = err; }
  size_t flushes() const { return flushes_; }
  // What MetaContexts() lists from now on (the daemon's list changes with its snapshots).
  // BLOCK_STATUS answers allocation for every one of them.
  void set_meta_contexts(std::vector<std::string> names) { contexts_ = std::move(names); }

 private:
  ExportInfo info_;
  std::vector<uint8_t> data_;
  std::vector<bool> allocated_;
  int fail_ = 0;
  size_t flushes_ = 0;
  std::vector<std::string> contexts_{std::string(kBaseAllocation)};
};

// A catalog over shared MemoryExports; each Open hands out a view of the same memory, as
// volumes do with multi-conn.
class MemoryCatalog final : public ExportCatalog {
 public:
  MemoryExport& Add(const std::string& name, ExportInfo info);
  std::vector<ExportListing> List() override;
  std::unique_ptr<Export> Open(std::string_view name) override;

 private:
  std::map<std::string, std::shared_ptr<MemoryExport>, std::less<>> exports_;
};

}  // namespace blocksnap::nbd
