// ReplyQueue: gathering the unsent bytes across replies and partial sends, releasing each
// reply once sent in full, and a bounded size under a queue that never runs empty.
#include "io/reply_queue.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace blocksnap::io {
namespace {

// A slot whose reply is the given pieces (kept alive by the test).
struct Reply {
  explicit Reply(std::vector<std::string> pieces) : parts(std::move(pieces)) {
    for (auto& p : parts) slot.iov.push_back({p.data(), p.size()});
  }
  std::vector<std::string> parts;
  nbd::Slot slot;
};

std::string Gathered(const ReplyQueue& q, size_t max_iov = 1024) {
  std::vector<iovec> iov;
  q.Gather(iov, max_iov);
  std::string out;
  for (const iovec& v : iov) out.append(static_cast<const char*>(v.iov_base), v.iov_len);
  return out;
}

TEST(ReplyQueue, PartialSendsResumeMidPieceAndReleaseInOrder) {
  Reply a({"hdr1", "data-one"}), b({"hdr2"}), c({"hdr3", "xy"});
  ReplyQueue q;
  q.Push(a.slot);
  q.Push(b.slot);
  q.Push(c.slot);
  EXPECT_EQ(Gathered(q), "hdr1data-onehdr2hdr3xy");
  std::vector<nbd::Slot*> released;
  auto release = [&](nbd::Slot& s) { released.push_back(&s); };
  q.Consume(6, release);  // "hdr1da"
  EXPECT_TRUE(released.empty());
  EXPECT_EQ(Gathered(q), "ta-onehdr2hdr3xy");
  q.Consume(10, release);  // "ta-one" + "hdr2"
  EXPECT_EQ(released, (std::vector<nbd::Slot*>{&a.slot, &b.slot}));
  EXPECT_EQ(Gathered(q), "hdr3xy");
  EXPECT_EQ(Gathered(q, 1), "hdr3");  // the iovec limit
  q.Consume(6, release);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(released.back(), &c.slot);
  EXPECT_EQ(Gathered(q), "");
}

TEST(ReplyQueue, ClearReleasesOnlyWhatIsUnsent) {
  Reply a({"aaaa"}), b({"bbbb"}), c({"cccc"});
  ReplyQueue q;
  q.Push(a.slot);
  q.Push(b.slot);
  q.Push(c.slot);
  std::vector<nbd::Slot*> released;
  auto release = [&](nbd::Slot& s) { released.push_back(&s); };
  q.Consume(6, release);  // a and half of b
  q.Clear(release);
  EXPECT_EQ(released, (std::vector<nbd::Slot*>{&a.slot, &b.slot, &c.slot}));
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.stored(), 0u);
}

// Steady pipelining: every send leaves the replies that completed while it was in flight,
// so the queue never runs empty. What it stores must not grow with the replies sent.
TEST(ReplyQueue, NeverEmptyQueueStaysBounded) {
  std::vector<Reply> replies;
  replies.reserve(100000);
  for (int i = 0; i < 100000; ++i) replies.emplace_back(std::vector<std::string>{"0123456789"});
  ReplyQueue q;
  int pushed = 0, released = 0;
  size_t most = 0;
  auto release = [&](nbd::Slot&) { ++released; };
  for (int i = 0; i < 8; ++i) q.Push(replies[pushed++].slot);
  while (pushed < int(replies.size())) {
    size_t unsent = Gathered(q).size();
    for (int i = 0; i < 3 && pushed < int(replies.size()); ++i) {
      q.Push(replies[pushed++].slot);  // completed during the send
    }
    q.Consume(unsent, release);
    ASSERT_FALSE(q.empty());
    most = std::max(most, q.stored());
  }
  EXPECT_LE(most, 16u);
  q.Consume(Gathered(q).size(), release);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(released, int(replies.size()));
}

}  // namespace
}  // namespace blocksnap::io
