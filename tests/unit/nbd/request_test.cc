// Request header parsing and validate_request(), byte-exact, with every malformed case.
#include "nbd/request.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace blocksnap::nbd {
namespace {

using testing::Wire;

TEST(RequestParse, ByteExactHeader) {
  std::string h = Wire()
                      .u32(kRequestMagic)
                      .u16(kCmdFlagFua)
                      .u16(kCmdWrite)
                      .u64(0x0102030405060708ULL)
                      .u64(4096)
                      .u32(512);
  ASSERT_EQ(h.size(), kRequestHeaderSize);
  Request r;
  ASSERT_TRUE(ParseRequestHeader(reinterpret_cast<const uint8_t*>(h.data()), r));
  EXPECT_EQ(r.flags, kCmdFlagFua);
  EXPECT_EQ(r.type, kCmdWrite);
  EXPECT_EQ(r.handle, 0x0102030405060708ULL);
  EXPECT_EQ(r.offset, 4096u);
  EXPECT_EQ(r.length, 512u);
  uint8_t back[kRequestHeaderSize];
  EncodeRequestHeader(r, back);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(back), sizeof back), h);
  EXPECT_EQ(PayloadLength(r), 512u);
}

TEST(RequestParse, WrongMagic) {
  std::string h = Wire().u32(kSimpleReplyMagic).u16(0).u16(0).u64(1).u64(0).u32(0);
  Request r;
  EXPECT_FALSE(ParseRequestHeader(reinterpret_cast<const uint8_t*>(h.data()), r));
}

TEST(RequestParse, GarbageAfterHandshakeIsRejected) {
  // Every 28-byte window of text that is not a request: the magic check refuses it.
  const std::string garbage = "GET / HTTP/1.1\r\nHost: example\r\n\r\n0123456789abcdef";
  for (size_t i = 0; i + kRequestHeaderSize <= garbage.size(); ++i) {
    Request r;
    EXPECT_FALSE(ParseRequestHeader(reinterpret_cast<const uint8_t*>(garbage.data() + i), r));
  }
  // A reply magic echoed back is not a request either.
  std::string echo = Wire().u32(kStructuredReplyMagic).u16(0).u16(0).u64(0).u64(0).u32(0);
  Request r;
  EXPECT_FALSE(ParseRequestHeader(reinterpret_cast<const uint8_t*>(echo.data()), r));
}

TEST(RequestParse, OversizedWritePayload) {
  Request r{.type = kCmdWrite, .length = kMaxPayload + 1};
  EXPECT_TRUE(PayloadTooLarge(r));
  r.length = kMaxPayload;
  EXPECT_FALSE(PayloadTooLarge(r));
  r.type = kCmdRead;
  r.length = 0xffffffff;  // no payload follows a read, however long
  EXPECT_FALSE(PayloadTooLarge(r));
  EXPECT_EQ(PayloadLength(r), 0u);
}

class Validate : public ::testing::Test {
 protected:
  Validate() {
    info.size = 1 << 20;
    neg.structured_replies = true;
    neg.block_size_agreed = true;
    neg.meta_contexts = {0};
  }
  uint32_t V(uint16_t type, uint64_t off, uint32_t len, uint16_t flags = 0) {
    return ValidateRequest(Request{.flags = flags, .type = type, .offset = off, .length = len},
                           info, neg);
  }
  ExportInfo info;
  Negotiated neg;
};

TEST_F(Validate, ValidRequests) {
  EXPECT_EQ(V(kCmdRead, 0, 4096), 0u);
  EXPECT_EQ(V(kCmdRead, 0, 4096, kCmdFlagDf), 0u);
  EXPECT_EQ(V(kCmdWrite, (1 << 20) - 512, 512, kCmdFlagFua), 0u);
  EXPECT_EQ(V(kCmdFlush, 0, 0), 0u);
  EXPECT_EQ(V(kCmdTrim, 0, 1 << 20, kCmdFlagFua), 0u);
  EXPECT_EQ(V(kCmdWriteZeroes, 0, 1024, kCmdFlagNoHole | kCmdFlagFastZero | kCmdFlagFua), 0u);
  EXPECT_EQ(V(kCmdCache, 0, 4096), 0u);
  EXPECT_EQ(V(kCmdBlockStatus, 0, 1 << 20, kCmdFlagReqOne), 0u);
}

TEST_F(Validate, ZeroLengthAnswered) {
  EXPECT_EQ(V(kCmdRead, 0, 0), 0u);
  EXPECT_EQ(V(kCmdWrite, 1 << 20, 0), 0u);  // at the very end is still in range
  EXPECT_EQ(V(kCmdTrim, 512, 0), 0u);
  EXPECT_EQ(V(kCmdBlockStatus, 0, 0), kEINVAL);
}

TEST_F(Validate, PastTheEnd) {
  EXPECT_EQ(V(kCmdRead, 1 << 20, 512), kEINVAL);
  EXPECT_EQ(V(kCmdTrim, (1 << 20) - 512, 1024), kEINVAL);
  EXPECT_EQ(V(kCmdCache, 1 << 20, 512), kEINVAL);
  EXPECT_EQ(V(kCmdBlockStatus, 1 << 20, 512), kEINVAL);
  EXPECT_EQ(V(kCmdWrite, 1 << 20, 512), kENOSPC);
  EXPECT_EQ(V(kCmdWriteZeroes, (1 << 20) - 512, 1024), kENOSPC);
  // offset + length overflows 64 bits
  EXPECT_EQ(V(kCmdRead, ~0ULL - 100, 512), kEINVAL);
  EXPECT_EQ(V(kCmdWrite, ~0ULL - 100, 512), kENOSPC);
}

TEST_F(Validate, Misaligned) {
  EXPECT_EQ(V(kCmdRead, 1, 512), kEINVAL);
  EXPECT_EQ(V(kCmdWrite, 0, 100), kEINVAL);
  EXPECT_EQ(V(kCmdTrim, 256, 512), kEINVAL);
  neg.block_size_agreed = false;  // a client that never saw the minimum may send any size
  EXPECT_EQ(V(kCmdRead, 1, 100), 0u);
}

TEST_F(Validate, ReadOnly) {
  info.read_only = true;
  EXPECT_EQ(V(kCmdWrite, 0, 512), kEPERM);
  EXPECT_EQ(V(kCmdTrim, 0, 512), kEPERM);
  EXPECT_EQ(V(kCmdWriteZeroes, 0, 512), kEPERM);
  EXPECT_EQ(V(kCmdRead, 0, 512), 0u);
}

TEST_F(Validate, UnknownCommandAndBadFlags) {
  EXPECT_EQ(V(8, 0, 0), kEINVAL);       // RESIZE: not offered
  EXPECT_EQ(V(0x1234, 0, 0), kEINVAL);  // unknown
  EXPECT_EQ(V(kCmdDisc, 0, 0), kEINVAL);
  EXPECT_EQ(V(kCmdWrite, 0, 512, kCmdFlagNoHole), kEINVAL);
  EXPECT_EQ(V(kCmdTrim, 0, 512, kCmdFlagFastZero), kEINVAL);
  EXPECT_EQ(V(kCmdBlockStatus, 0, 512, kCmdFlagDf), kEINVAL);
  EXPECT_EQ(V(kCmdRead, 0, 512, 1 << 9), kEINVAL);  // undefined flag bit
  EXPECT_EQ(V(kCmdFlush, 0, 512), kEINVAL);         // flush carries no range
}

// The spec: once SEND_FUA is advertised the server MUST accept FUA on every command (clients
// are known to set it on reads and flushes); without it, FUA is not the client's to send.
TEST_F(Validate, FuaAcceptedOnEveryCommandOnlyWhenAdvertised) {
  for (uint16_t type :
       {kCmdRead, kCmdWrite, kCmdFlush, kCmdTrim, kCmdCache, kCmdWriteZeroes, kCmdBlockStatus}) {
    uint32_t len = type == kCmdFlush ? 0 : 512;
    EXPECT_EQ(V(type, 0, len, kCmdFlagFua), 0u) << "command " << type;
  }
  info.can_fua = false;
  EXPECT_EQ(V(kCmdWrite, 0, 512, kCmdFlagFua), kEINVAL);
  EXPECT_EQ(V(kCmdRead, 0, 512, kCmdFlagFua), kEINVAL);
  info.can_fua = true;
  info.read_only = true;  // never advertised on a read-only export
  EXPECT_EQ(V(kCmdRead, 0, 512, kCmdFlagFua), kEINVAL);
  EXPECT_EQ(V(kCmdRead, 0, 512), 0u);
}

TEST_F(Validate, NotNegotiatedOrNotAdvertised) {
  neg.meta_contexts.clear();
  EXPECT_EQ(V(kCmdBlockStatus, 0, 512), kEINVAL);
  neg.structured_replies = false;
  EXPECT_EQ(V(kCmdRead, 0, 512, kCmdFlagDf), kEINVAL);
  info.can_fast_zero = false;
  EXPECT_EQ(V(kCmdWriteZeroes, 0, 512, kCmdFlagFastZero), kEINVAL);
  info.can_trim = false;
  EXPECT_EQ(V(kCmdTrim, 0, 512), kEINVAL);
  info.can_cache = false;
  EXPECT_EQ(V(kCmdCache, 0, 512), kEINVAL);
}

TEST_F(Validate, OversizedReadOrWrite) {
  info.size = 1ULL << 40;
  EXPECT_EQ(V(kCmdRead, 0, kMaxPayload), 0u);
  EXPECT_EQ(V(kCmdRead, 0, kMaxPayload + 512), kEINVAL);
  EXPECT_EQ(V(kCmdWrite, 0, kMaxPayload + 512), kEINVAL);
  EXPECT_EQ(V(kCmdTrim, 0, kMaxPayload + 512), 0u);  // no payload: no cap
}

}  // namespace
}  // namespace blocksnap::nbd
