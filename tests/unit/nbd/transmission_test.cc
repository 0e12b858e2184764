// Transmission against a MemoryExport: replies byte-exact, simple and structured.
#include "nbd/transmission.h"

#include <gtest/gtest.h>

#include <cerrno>

#include "nbd/memory_export.h"
#include "test_util.h"

namespace blocksnap::nbd {
namespace {

using testing::Wire;

class Collect final : public ReplySink {
 public:
  void SendReply(Slot& slot) noexcept override {
    for (const auto& v : slot.iov) out.append(static_cast<const char*>(v.iov_base), v.iov_len);
    ++replies;
  }
  std::string out;
  int replies = 0;
};

class TransmissionTest : public ::testing::Test {
 protected:
  void Open(bool structured) {
    ExportInfo info;
    info.size = 64 * 1024;
    mem_ = &catalog_.Add("m", info);
    Negotiated neg;
    neg.structured_replies = structured;
    neg.block_size_agreed = true;
    if (structured) neg.meta_contexts = {0};
    tx_ = std::make_unique<Transmission>(catalog_.Open("m"), neg, sink_);
  }
  std::string Run(uint16_t type, uint64_t off, uint32_t len, uint16_t flags = 0,
                  std::string payload = {}) {
    slot_.req = Request{.flags = flags, .type = type, .handle = 7, .offset = off, .length = len};
    slot_.data.Resize(payload.size());
    std::copy(payload.begin(), payload.end(), slot_.data.data());
    sink_.out.clear();
    tx_->Handle(slot_);
    return sink_.out;
  }
  static std::string Simple(uint32_t err) { return Wire().u32(kSimpleReplyMagic).u32(err).u64(7); }
  static Wire Chunk(uint16_t flags, uint16_t type, uint32_t len) {
    Wire w;
    return w.u32(kStructuredReplyMagic).u16(flags).u16(type).u64(7).u32(len), w;
  }

  MemoryCatalog catalog_;
  MemoryExport* mem_ = nullptr;
  Collect sink_;
  Slot slot_;
  std::unique_ptr<Transmission> tx_;
};

TEST_F(TransmissionTest, SimpleWriteReadFlush) {
  Open(false);
  std::string data(512, 'a');
  EXPECT_EQ(Run(kCmdWrite, 512, 512, kCmdFlagFua, data), Simple(0));
  EXPECT_EQ(Run(kCmdRead, 512, 512), Simple(0) + data);
  EXPECT_EQ(Run(kCmdFlush, 0, 0), Simple(0));
  EXPECT_EQ(mem_->flushes(), 1u);
  EXPECT_EQ(Run(kCmdRead, 65536, 512), Simple(kEINVAL));
  EXPECT_EQ(Run(kCmdWrite, 65536, 512, 0, std::string(512, 'x')), Simple(kENOSPC));
  EXPECT_EQ(Run(kCmdRead, 0, 0), Simple(0));  // zero length answered
  EXPECT_EQ(Run(99, 0, 0), Simple(kEINVAL));
}

TEST_F(TransmissionTest, ExportErrorsMapped) {
  Open(false);
  mem_->set_fail(EDQUOT);
  EXPECT_EQ(Run(kCmdWrite, 0, 512, 0, std::string(512, 'a')), Simple(kENOSPC));
  mem_->set_fail(ENOTSUP);
  EXPECT_EQ(Run(kCmdWriteZeroes, 0, 512, kCmdFlagFastZero), Simple(kENOTSUP));
  EXPECT_EQ(Run(kCmdWriteZeroes, 0, 512), Simple(kEINVAL));
}

TEST_F(TransmissionTest, StructuredReadSplitsHoles) {
  Open(true);
  std::string data(4096, 'd');
  Run(kCmdWrite, 4096, 4096, 0, data);
  // [0,4K) zero, [4K,8K) data, [8K,12K) zero
  std::string expect = Chunk(0, kReplyTypeOffsetHole, 12).u64(0).u32(4096);
  expect += Chunk(0, kReplyTypeOffsetData, 8 + 4096).u64(4096).str(data);
  expect += Chunk(kReplyFlagDone, kReplyTypeOffsetHole, 12).u64(8192).u32(4096);
  EXPECT_EQ(Run(kCmdRead, 0, 12288), expect);
  // DF: one data chunk
  std::string df = Chunk(kReplyFlagDone, kReplyTypeOffsetData, 8 + 12288).u64(0).zeros(4096);
  df += data + std::string(4096, '\0');
  EXPECT_EQ(Run(kCmdRead, 0, 12288, kCmdFlagDf), df);
  // errors on READ are error chunks
  EXPECT_EQ(Run(kCmdRead, 65536, 512),
            std::string(Chunk(kReplyFlagDone, kReplyTypeError, 6).u32(kEINVAL).u16(0)));
  // zero length: a NONE chunk
  EXPECT_EQ(Run(kCmdRead, 0, 0), std::string(Chunk(kReplyFlagDone, kReplyTypeNone, 0)));
}

TEST_F(TransmissionTest, BlockStatusAndTrimZero) {
  Open(true);
  Run(kCmdWrite, 0, 8192, 0, std::string(8192, 'x'));
  std::string all = Chunk(kReplyFlagDone, kReplyTypeBlockStatus, 4 + 16)
                        .u32(1)
                        .u32(8192)
                        .u32(0)
                        .u32(65536 - 8192)
                        .u32(kStateHole | kStateZero);
  EXPECT_EQ(Run(kCmdBlockStatus, 0, 65536), all);
  std::string one = Chunk(kReplyFlagDone, kReplyTypeBlockStatus, 4 + 8).u32(1).u32(8192).u32(0);
  EXPECT_EQ(Run(kCmdBlockStatus, 0, 65536, kCmdFlagReqOne), one);
  // Extents never exceed the request.
  std::string clipped = Chunk(kReplyFlagDone, kReplyTypeBlockStatus, 4 + 8).u32(1).u32(1024).u32(0);
  EXPECT_EQ(Run(kCmdBlockStatus, 0, 1024), clipped);

  EXPECT_EQ(Run(kCmdTrim, 0, 4096), Simple(0));
  EXPECT_FALSE(mem_->allocated(0));
  EXPECT_EQ(Run(kCmdWriteZeroes, 16384, 4096, kCmdFlagNoHole), Simple(0));
  EXPECT_TRUE(mem_->allocated(16384));
  EXPECT_EQ(Run(kCmdRead, 4096, 4096, kCmdFlagDf),
            std::string(Chunk(kReplyFlagDone, kReplyTypeOffsetData, 8 + 4096)
                            .u64(4096)
                            .str(std::string(4096, 'x'))));
}

TEST_F(TransmissionTest, BlockStatusWithoutContextIsInvalid) {
  Open(false);
  EXPECT_EQ(Run(kCmdBlockStatus, 0, 4096), Simple(kEINVAL));
}

// Slot buffers are page-aligned whatever their size, also after growing; shrinking the size
// keeps the allocation, Shrink gives it back.
TEST(BufferTest, PageAlignedAtEverySize) {
  Buffer b;
  for (size_t n : {size_t(1), size_t(28), size_t(4096), size_t(65537), size_t(1) << 20}) {
    b.Resize(n);
    ASSERT_EQ(b.size(), n);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % Buffer::kAlignment, 0u) << n;
    b.data()[n - 1] = 0x5a;  // the whole size is writable (ASan checks the bound)
  }
  uint8_t* big = b.data();
  b.Resize(4096);  // shrinking the size keeps the allocation
  EXPECT_EQ(b.data(), big);
  EXPECT_EQ(b.capacity(), size_t(1) << 20);
  b.Shrink(4096);
  EXPECT_EQ(b.capacity(), 0u);
  b.Resize(100);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % Buffer::kAlignment, 0u);
}

}  // namespace
}  // namespace blocksnap::nbd
