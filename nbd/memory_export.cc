#include "nbd/memory_export.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace blocksnap::nbd {

MemoryExport::MemoryExport(ExportInfo info)
    : info_(std::move(info)), data_(info_.size), allocated_((info_.size + kBlock - 1) / kBlock) {}

void MemoryExport::Read(uint64_t offset, std::span<uint8_t> buf, Completion& done) noexcept {
  if (fail_) return done.Complete(-fail_);
  std::memcpy(buf.data(), data_.data() + offset, buf.size());
  done.Complete(0);
}

void MemoryExport::Write(uint64_t offset, std::span<const uint8_t> data, bool,
                         Completion& done) noexcept {
  if (fail_) return done.Complete(-fail_);
  std::memcpy(data_.data() + offset, data.data(), data.size());
  for (uint64_t b = offset / kBlock; b * kBlock < offset + data.size(); ++b) allocated_[b] = true;
  done.Complete(0);
}

void MemoryExport::Flush(Completion& done) noexcept {
  if (fail_) return done.Complete(-fail_);
  ++flushes_;
  done.Complete(0);
}

void MemoryExport::Trim(uint64_t offset, uint64_t length, bool, Completion& done) noexcept {
  if (fail_) return done.Complete(-fail_);
  // Like punching a hole: whole blocks inside the range are deallocated, edges zeroed.
  std::memset(data_.data() + offset, 0, length);
  uint64_t first = (offset + kBlock - 1) / kBlock, end = (offset + length) / kBlock;
  for (uint64_t b = first; b < end; ++b) allocated_[b] = false;
  done.Complete(0);
}

void MemoryExport::Zero(uint64_t offset, uint64_t length, ZeroFlags flags,
                        Completion& done) noexcept {
  if (fail_) return done.Complete(-fail_);
  if (flags.no_hole) {
    std::memset(data_.data() + offset, 0, length);
    for (uint64_t b = offset / kBlock; b * kBlock < offset + length; ++b) allocated_[b] = true;
    return done.Complete(0);
  }
  Trim(offset, length, flags.fua, done);
}

void MemoryExport::Cache(uint64_t, uint64_t, Completion& done) noexcept {
  done.Complete(fail_ ? -fail_ : 0);
}

void MemoryExport::BlockStatus(size_t, uint64_t offset, uint64_t length, bool one,
                               std::vector<Extent>& out, Completion& done) noexcept {
  if (fail_) return done.Complete(-fail_);
  uint64_t end = offset + length;
  uint64_t pos = offset;
  while (pos < end) {
    bool alloc = allocated_[pos / kBlock];
    uint64_t next = std::min(end, (pos / kBlock + 1) * kBlock);
    while (next < end && allocated_[next / kBlock] == alloc) {
      next = std::min(end, next + kBlock);
    }
    out.push_back({next - pos, alloc ? 0 : (kStateHole | kStateZero)});
    pos = next;
    if (one) break;
  }
  done.Complete(0);
}

namespace {

// A per-connection handle on a shared MemoryExport.
class MemoryView final : public Export {
 public:
  explicit MemoryView(std::shared_ptr<MemoryExport> e) : e_(std::move(e)) {}
  const ExportInfo& info() const override { return e_->info(); }
  std::vector<std::string> MetaContexts() const override { return e_->MetaContexts(); }
  void Read(uint64_t o, std::span<uint8_t> b, Completion& d) noexcept override {
    e_->Read(o, b, d);
  }
  void Write(uint64_t o, std::span<const uint8_t> b, bool f, Completion& d) noexcept override {
    e_->Write(o, b, f, d);
  }
  void Flush(Completion& d) noexcept override { e_->Flush(d); }
  void Trim(uint64_t o, uint64_t l, bool f, Completion& d) noexcept override {
    e_->Trim(o, l, f, d);
  }
  void Zero(uint64_t o, uint64_t l, ZeroFlags f, Completion& d) noexcept override {
    e_->Zero(o, l, f, d);
  }
  void Cache(uint64_t o, uint64_t l, Completion& d) noexcept override { e_->Cache(o, l, d); }
  void BlockStatus(size_t c, uint64_t o, uint64_t l, bool one, std::vector<Extent>& out,
                   Completion& d) noexcept override {
    e_->BlockStatus(c, o, l, one, out, d);
  }

 private:
  std::shared_ptr<MemoryExport> e_;
};

}  // namespace

MemoryExport& MemoryCatalog::Add(const std::string& name, ExportInfo info) {
  auto e = std::make_shared<MemoryExport>(std::move(info));
  auto& ref = *e;
  exports_[name] = std::move(e);
  return ref;
}

std::vector<ExportListing> MemoryCatalog::List() {
  std::vector<ExportListing> out;
  for (const auto& [name, e] : exports_) out.push_back({name, e->info().description});
  return out;
}

std::unique_ptr<Export> MemoryCatalog::Open(std::string_view name) {
  auto it = exports_.find(name);
  if (it == exports_.end()) return nullptr;
  return std::make_unique<MemoryView>(it->second);
}

}  // namespace blocksnap::nbd
