// Byte-exact fixtures for the fixed-newstyle handshake, including every malformed case.
#include "nbd/handshake.h"

#include <gtest/gtest.h>

#include "nbd/memory_export.h"
#include "nbd/meta_context.h"
#include "test_util.h"

namespace blocksnap::nbd {
namespace {

using testing::Wire;

constexpr uint64_t kSize = 1 << 20;
// Flags of the default ExportInfo: flush, fua, trim, zeroes, fast zero, cache.
constexpr uint16_t kFlags = kTxHasFlags | kTxSendFlush | kTxSendFua | kTxSendTrim |
                            kTxSendWriteZeroes | kTxSendFastZero | kTxSendCache;

class HandshakeTest : public ::testing::Test {
 protected:
  HandshakeTest() {
    ExportInfo info;
    info.size = kSize;
    info.description = "first disk";
    catalog_.Add("disk", info);
    ExportInfo ro;
    ro.size = 4096;
    ro.read_only = true;
    catalog_.Add("ro", ro);
  }

  // Starts a handshake, checks the greeting, sends client flags.
  std::string Start(uint32_t client_flags = kClientFixedNewstyle | kClientNoZeroes) {
    EXPECT_EQ(
        hs_.TakeOutput(),
        std::string(Wire().u64(kNbdMagic).u64(kIHaveOpt).u16(kFlagFixedNewstyle | kFlagNoZeroes)));
    hs_.Feed(Wire().u32(client_flags).bytes());
    return hs_.TakeOutput();
  }
  std::string Send(const std::string& bytes) {
    hs_.Feed(bytes);
    return hs_.TakeOutput();
  }
  static std::string GoData(std::string_view name, std::vector<uint16_t> infos) {
    Wire w;
    w.u32(uint32_t(name.size())).str(name).u16(uint16_t(infos.size()));
    for (auto i : infos) w.u16(i);
    return w;
  }
  static std::string MetaData(std::string_view name, std::vector<std::string> queries) {
    Wire w;
    w.u32(uint32_t(name.size())).str(name).u32(uint32_t(queries.size()));
    for (auto& q : queries) w.u32(uint32_t(q.size())).str(q);
    return w;
  }
  static std::string BlockSizeInfo() {
    return Wire().u16(kInfoBlockSize).u32(512).u32(4096).u32(kMaxPayload);
  }

  MemoryCatalog catalog_;
  Handshake hs_{catalog_};
};

TEST_F(HandshakeTest, GreetingThenGoWithAllInfos) {
  EXPECT_EQ(Start(), "");
  std::string out =
      Send(Wire().opt(kOptGo, GoData("disk", {kInfoName, kInfoDescription, kInfoBlockSize})));
  EXPECT_EQ(out,
            std::string(Wire()
                            .rep(kOptGo, kRepInfo, Wire().u16(kInfoExport).u64(kSize).u16(kFlags))
                            .rep(kOptGo, kRepInfo, Wire().u16(kInfoName).str("disk"))
                            .rep(kOptGo, kRepInfo, Wire().u16(kInfoDescription).str("first disk"))
                            .rep(kOptGo, kRepInfo, BlockSizeInfo())
                            .rep(kOptGo, kRepAck)));
  EXPECT_EQ(hs_.state(), Handshake::State::kTransmission);
  EXPECT_TRUE(hs_.negotiated().block_size_agreed);
  EXPECT_EQ(hs_.negotiated().export_name, "disk");
  EXPECT_NE(hs_.TakeExport(), nullptr);
}

TEST_F(HandshakeTest, InfoKeepsNegotiatingAndBlockSizeNotAgreed) {
  Start();
  std::string out = Send(Wire().opt(kOptInfo, GoData("disk", {})));
  EXPECT_EQ(out,
            std::string(Wire()
                            .rep(kOptInfo, kRepInfo, Wire().u16(kInfoExport).u64(kSize).u16(kFlags))
                            .rep(kOptInfo, kRepInfo, BlockSizeInfo())
                            .rep(kOptInfo, kRepAck)));
  EXPECT_EQ(hs_.state(), Handshake::State::kNegotiating);
  Send(Wire().opt(kOptGo, GoData("disk", {})));
  EXPECT_EQ(hs_.state(), Handshake::State::kTransmission);
  EXPECT_FALSE(hs_.negotiated().block_size_agreed);
}

TEST_F(HandshakeTest, ReadOnlyExportFlags) {
  Start();
  std::string out = Send(Wire().opt(kOptGo, GoData("ro", {})));
  uint16_t ro = kTxHasFlags | kTxReadOnly | kTxSendFlush | kTxSendCache;
  EXPECT_EQ(out.substr(0, 32),
            std::string(Wire().rep(kOptGo, kRepInfo, Wire().u16(kInfoExport).u64(4096).u16(ro))));
}

TEST_F(HandshakeTest, ExportNameWithAndWithoutZeroes) {
  Start(kClientFixedNewstyle);  // no NO_ZEROES: 124 zero bytes follow
  std::string out = Send(Wire().opt(kOptExportName, "disk"));
  EXPECT_EQ(out, std::string(Wire().u64(kSize).u16(kFlags).zeros(124)));
  EXPECT_EQ(hs_.state(), Handshake::State::kTransmission);

  Handshake hs2(catalog_);
  hs2.TakeOutput();
  hs2.Feed(Wire().u32(kClientFixedNewstyle | kClientNoZeroes).opt(kOptExportName, "disk").bytes());
  EXPECT_EQ(hs2.TakeOutput(), std::string(Wire().u64(kSize).u16(kFlags)));
}

TEST_F(HandshakeTest, ExportNameUnknownCloses) {
  Start();
  EXPECT_EQ(Send(Wire().opt(kOptExportName, "nope")), "");
  EXPECT_EQ(hs_.state(), Handshake::State::kClosed);
}

TEST_F(HandshakeTest, ListWithDescriptions) {
  Start();
  std::string out = Send(Wire().opt(kOptList));
  EXPECT_EQ(out,
            std::string(Wire()
                            .rep(kOptList, kRepServer, Wire().u32(4).str("disk").str("first disk"))
                            .rep(kOptList, kRepServer, Wire().u32(2).str("ro"))
                            .rep(kOptList, kRepAck)));
  EXPECT_EQ(hs_.state(), Handshake::State::kNegotiating);
}

TEST_F(HandshakeTest, OptionsThatTakeNoDataRejectData) {
  Start();
  EXPECT_EQ(Send(Wire().opt(kOptList, "x")),
            std::string(Wire().rep(kOptList, kRepErrInvalid, "option takes no data")));
  EXPECT_EQ(Send(Wire().opt(kOptStructuredReply, "x")),
            std::string(Wire().rep(kOptStructuredReply, kRepErrInvalid, "option takes no data")));
  EXPECT_EQ(hs_.state(), Handshake::State::kNegotiating);
}

TEST_F(HandshakeTest, UnknownOptionUnsupportedSessionGoesOn) {
  Start();
  for (uint32_t opt : {uint32_t(kOptStartTls), uint32_t(kOptExtendedHeaders), 999u}) {
    EXPECT_EQ(Send(Wire().opt(opt, "abc")),
              std::string(Wire().rep(opt, kRepErrUnsup, "option not supported")));
  }
  Send(Wire().opt(kOptGo, GoData("disk", {})));
  EXPECT_EQ(hs_.state(), Handshake::State::kTransmission);
}

TEST_F(HandshakeTest, UnknownExportInGoIsErrUnknown) {
  Start();
  EXPECT_EQ(Send(Wire().opt(kOptGo, GoData("nope", {}))),
            std::string(Wire().rep(kOptGo, kRepErrUnknown, "unknown export: nope")));
  EXPECT_EQ(hs_.state(), Handshake::State::kNegotiating);
}

TEST_F(HandshakeTest, MalformedGoIsErrInvalid) {
  Start();
  const std::string bad[] = {
      Wire().u32(10).str("disk").u16(0),        // name longer than the data
      Wire().u32(4).str("disk"),                // missing info count
      Wire().u32(4).str("disk").u16(2).u16(1),  // fewer infos than counted
      Wire().u32(4).str("disk").u16(0).u16(1),  // trailing bytes
      Wire().u16(1),                            // truncated name length
  };
  for (const auto& data : bad) {
    EXPECT_EQ(Send(Wire().opt(kOptGo, data)),
              std::string(Wire().rep(kOptGo, kRepErrInvalid, "malformed request")));
  }
  EXPECT_EQ(hs_.state(), Handshake::State::kNegotiating);
}

TEST_F(HandshakeTest, UnknownClientFlagDrops) {
  hs_.TakeOutput();
  hs_.Feed(Wire().u32(1 << 5).bytes());
  EXPECT_EQ(hs_.state(), Handshake::State::kClosed);
  EXPECT_EQ(hs_.close_reason(), "unknown client flags");
}

TEST_F(HandshakeTest, WrongOptionMagicCloses) {
  Start();
  Send(Wire().u64(0x1122334455667788ULL).u32(kOptList).u32(0));
  EXPECT_EQ(hs_.state(), Handshake::State::kClosed);
}

TEST_F(HandshakeTest, HugeOptionLengthClosesBeforeBuffering) {
  Start();
  Send(Wire().u64(kIHaveOpt).u32(kOptGo).u32(0xffffffff));
  EXPECT_EQ(hs_.state(), Handshake::State::kClosed);
}

TEST_F(HandshakeTest, TruncatedInputWaitsByteByByte) {
  std::string all = Wire()
                        .u32(kClientFixedNewstyle | kClientNoZeroes)
                        .opt(kOptStructuredReply)
                        .opt(kOptGo, GoData("disk", {kInfoBlockSize}));
  hs_.TakeOutput();
  std::string out;
  for (char c : all) {
    EXPECT_EQ(hs_.state(), Handshake::State::kNegotiating);
    hs_.Feed(std::string_view(&c, 1));
    out += hs_.TakeOutput();
  }
  EXPECT_EQ(hs_.state(), Handshake::State::kTransmission);
  EXPECT_TRUE(hs_.negotiated().structured_replies);
  EXPECT_EQ(out.substr(0, 20), std::string(Wire().rep(kOptStructuredReply, kRepAck)));
}

TEST_F(HandshakeTest, LeftoverBytesAfterGoKeptForTransmission) {
  Start();
  hs_.Feed(Wire().opt(kOptGo, GoData("disk", {})).str("REQ").bytes());
  EXPECT_EQ(hs_.state(), Handshake::State::kTransmission);
  EXPECT_EQ(hs_.TakeLeftover(), "REQ");
}

TEST_F(HandshakeTest, AbortAcksAndCloses) {
  Start();
  EXPECT_EQ(Send(Wire().opt(kOptAbort)), std::string(Wire().rep(kOptAbort, kRepAck)));
  EXPECT_EQ(hs_.state(), Handshake::State::kClosed);
}

TEST_F(HandshakeTest, StructuredReplyTwiceIsInvalid) {
  Start();
  EXPECT_EQ(Send(Wire().opt(kOptStructuredReply)),
            std::string(Wire().rep(kOptStructuredReply, kRepAck)));
  EXPECT_EQ(Send(Wire().opt(kOptStructuredReply)),
            std::string(Wire().rep(kOptStructuredReply, kRepErrInvalid,
                                   "structured replies already negotiated")));
}

TEST_F(HandshakeTest, MetaContextNeedsStructuredReplies) {
  Start();
  EXPECT_EQ(Send(Wire().opt(kOptSetMetaContext, MetaData("disk", {"base:allocation"}))),
            std::string(Wire().rep(kOptSetMetaContext, kRepErrInvalid,
                                   "structured replies not negotiated")));
}

TEST_F(HandshakeTest, ListAndSetMetaContext) {
  Start();
  Send(Wire().opt(kOptStructuredReply));
  // LIST with no query lists everything, with id 0.
  EXPECT_EQ(Send(Wire().opt(kOptListMetaContext, MetaData("disk", {}))),
            std::string(
                Wire()
                    .rep(kOptListMetaContext, kRepMetaContext, Wire().u32(0).str("base:allocation"))
                    .rep(kOptListMetaContext, kRepAck)));
  // A namespace query matches by prefix; an unknown one matches nothing.
  EXPECT_EQ(Send(Wire().opt(kOptListMetaContext, MetaData("disk", {"base:", "qemu:x"}))),
            std::string(
                Wire()
                    .rep(kOptListMetaContext, kRepMetaContext, Wire().u32(0).str("base:allocation"))
                    .rep(kOptListMetaContext, kRepAck)));
  EXPECT_EQ(Send(Wire().opt(kOptSetMetaContext, MetaData("disk", {"base:allocation", "nope:x"}))),
            std::string(
                Wire()
                    .rep(kOptSetMetaContext, kRepMetaContext, Wire().u32(1).str("base:allocation"))
                    .rep(kOptSetMetaContext, kRepAck)));
  Send(Wire().opt(kOptGo, GoData("disk", {})));
  ASSERT_EQ(hs_.state(), Handshake::State::kTransmission);
  EXPECT_EQ(hs_.negotiated().meta_contexts, std::vector<size_t>{0});
}

TEST_F(HandshakeTest, MetaContextForAnotherExportDropped) {
  Start();
  Send(Wire().opt(kOptStructuredReply));
  Send(Wire().opt(kOptSetMetaContext, MetaData("ro", {"base:allocation"})));
  Send(Wire().opt(kOptGo, GoData("disk", {})));
  EXPECT_TRUE(hs_.negotiated().meta_contexts.empty());
}

// The daemon's context list follows its snapshots. A snapshot deleted between SET_META_CONTEXT
// and GO moves the contexts after it: the id the client holds would then name another
// snapshot's changes. GO is refused until the client sets its contexts again; a snapshot
// taken in between (appended) moves nothing.
TEST_F(HandshakeTest, MetaContextsThatMovedBeforeGoAreSetAgain) {
  ExportInfo info;
  info.size = kSize;
  MemoryExport& vol = catalog_.Add("vol", info);
  vol.set_meta_contexts({"base:allocation", "blocksnap:changed:1", "blocksnap:changed:2"});
  Start();
  Send(Wire().opt(kOptStructuredReply));
  const std::string set = Wire().opt(kOptSetMetaContext, MetaData("vol", {"blocksnap:changed:2"}));
  EXPECT_EQ(Send(set), std::string(Wire()
                                       .rep(kOptSetMetaContext, kRepMetaContext,
                                            Wire().u32(ContextWireId(2)).str("blocksnap:changed:2"))
                                       .rep(kOptSetMetaContext, kRepAck)));
  vol.set_meta_contexts({"base:allocation", "blocksnap:changed:2"});  // snapshot 1 deleted
  EXPECT_EQ(Send(Wire().opt(kOptGo, GoData("vol", {}))),
            std::string(Wire().rep(kOptGo, kRepErrInvalid,
                                   "meta contexts changed since they were set (a snapshot was "
                                   "deleted): set them again")));
  EXPECT_EQ(hs_.state(), Handshake::State::kNegotiating);
  EXPECT_EQ(Send(set), std::string(Wire()
                                       .rep(kOptSetMetaContext, kRepMetaContext,
                                            Wire().u32(ContextWireId(1)).str("blocksnap:changed:2"))
                                       .rep(kOptSetMetaContext, kRepAck)));
  vol.set_meta_contexts({"base:allocation", "blocksnap:changed:2", "blocksnap:changed:3"});
  Send(Wire().opt(kOptGo, GoData("vol", {})));
  ASSERT_EQ(hs_.state(), Handshake::State::kTransmission);
  EXPECT_EQ(hs_.negotiated().meta_contexts, std::vector<size_t>{1});
}

TEST_F(HandshakeTest, MalformedMetaContext) {
  Start();
  Send(Wire().opt(kOptStructuredReply));
  EXPECT_EQ(Send(Wire().opt(kOptSetMetaContext, Wire().u32(4).str("disk").u32(1).u32(50))),
            std::string(Wire().rep(kOptSetMetaContext, kRepErrInvalid, "malformed query")));
  EXPECT_EQ(Send(Wire().opt(kOptSetMetaContext, MetaData("disk", {}) + "x")),
            std::string(Wire().rep(kOptSetMetaContext, kRepErrInvalid, "trailing data")));
  EXPECT_EQ(Send(Wire().opt(kOptListMetaContext, MetaData("zz", {}))),
            std::string(Wire().rep(kOptListMetaContext, kRepErrUnknown, "unknown export: zz")));
}

// Counts List() calls, so that a test sees the work a Feed does, not only its output.
class CountingCatalog final : public ExportCatalog {
 public:
  explicit CountingCatalog(ExportCatalog& inner) : inner_(inner) {}
  std::vector<ExportListing> List() override {
    ++lists;
    return inner_.List();
  }
  std::unique_ptr<Export> Open(std::string_view name) override { return inner_.Open(name); }
  size_t lists = 0;

 private:
  ExportCatalog& inner_;
};

// The replies to one NBD_OPT_LIST of the fixture's catalog.
std::string ListAnswer() {
  return Wire()
      .rep(kOptList, kRepServer, Wire().u32(4).str("disk").str("first disk"))
      .rep(kOptList, kRepServer, Wire().u32(2).str("ro"))
      .rep(kOptList, kRepAck);
}

// A client that pipelines thousands of options and reads nothing must not make one Feed
// produce (and the server buffer) the replies to all of them: each Feed stops at the bound,
// keeps the rest, and every option is still answered, in order, as the output is taken.
TEST_F(HandshakeTest, PipelinedOptionsAnsweredInBoundedBatches) {
  CountingCatalog counting(catalog_);
  constexpr size_t kMaxOutput = 1000;
  Handshake hs(counting, kMaxOutput);
  hs.TakeOutput();
  constexpr size_t kOptions = 5000;
  Wire in;
  in.u32(kClientFixedNewstyle | kClientNoZeroes);
  for (size_t i = 0; i < kOptions; ++i) in.opt(kOptList);
  in.opt(kOptGo, GoData("disk", {})).str("REQ");

  const std::string answer = ListAnswer();
  ASSERT_LT(answer.size(), kMaxOutput);
  hs.Feed(in.bytes());
  std::string out = hs.TakeOutput();
  // The batch ends with the option that reached the bound: at most one answer past it.
  EXPECT_GE(out.size(), kMaxOutput);
  EXPECT_LT(out.size(), kMaxOutput + answer.size());
  EXPECT_EQ(counting.lists, (kMaxOutput + answer.size() - 1) / answer.size());
  EXPECT_TRUE(hs.stalled());
  EXPECT_EQ(hs.state(), Handshake::State::kNegotiating);

  size_t feeds = 1;
  while (hs.stalled()) {
    hs.Resume();
    std::string batch = hs.TakeOutput();
    ASSERT_LT(batch.size(), kMaxOutput + answer.size());
    out += batch;
    ++feeds;
  }
  EXPECT_GT(feeds, kOptions * answer.size() / (kMaxOutput + answer.size()));
  EXPECT_EQ(counting.lists, kOptions);
  std::string expected;
  for (size_t i = 0; i < kOptions; ++i) expected += answer;
  ASSERT_GT(out.size(), expected.size());
  EXPECT_EQ(out.substr(0, expected.size()), expected);
  EXPECT_EQ(out.substr(expected.size()),
            std::string(Wire()
                            .rep(kOptGo, kRepInfo, Wire().u16(kInfoExport).u64(kSize).u16(kFlags))
                            .rep(kOptGo, kRepInfo, BlockSizeInfo())
                            .rep(kOptGo, kRepAck)));
  EXPECT_EQ(hs.state(), Handshake::State::kTransmission);
  EXPECT_FALSE(hs.stalled());
  EXPECT_EQ(hs.TakeLeftover(), "REQ");
}

// Bytes that arrive while the handshake is stalled queue behind the options it holds.
TEST_F(HandshakeTest, BytesFedWhileStalledAreHandledAfterTheHeldOptions) {
  Handshake hs(catalog_, 1);
  hs.TakeOutput();
  hs.Feed(Wire().u32(kClientFixedNewstyle | kClientNoZeroes).opt(kOptList).opt(kOptAbort).bytes());
  EXPECT_EQ(hs.TakeOutput(), ListAnswer());
  EXPECT_TRUE(hs.stalled());
  hs.Feed(Wire().opt(kOptList).bytes());
  EXPECT_EQ(hs.TakeOutput(), std::string(Wire().rep(kOptAbort, kRepAck)));
  EXPECT_EQ(hs.state(), Handshake::State::kClosed);
  EXPECT_FALSE(hs.stalled());
}

// The default bound holds for the attack the bound is for: 16 384 LIST headers (256 KiB,
// one receive) in one Feed.
TEST_F(HandshakeTest, DefaultBoundLimitsOneFeedOfManyLists) {
  Start();
  Wire in;
  for (int i = 0; i < 16384; ++i) in.opt(kOptList);
  std::string out = Send(in);
  EXPECT_LT(out.size(), Handshake::kDefaultMaxOutput + ListAnswer().size());
  EXPECT_TRUE(hs_.stalled());
}

}  // namespace
}  // namespace blocksnap::nbd
