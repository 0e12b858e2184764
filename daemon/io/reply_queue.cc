#include "io/reply_queue.h"

namespace blocksnap::io {

void ReplyQueue::Push(nbd::Slot& slot) {
  size_t total = 0;
  for (const iovec& v : slot.iov) total += v.iov_len;
  entries_.push_back({&slot, total});
}

void ReplyQueue::Gather(std::vector<iovec>& out, size_t max_iov) const {
  size_t skip = head_sent_;
  for (size_t i = head_; i < entries_.size() && out.size() < max_iov; ++i) {
    for (const iovec& v : entries_[i].slot->iov) {
      if (out.size() == max_iov) break;
      if (skip >= v.iov_len) {
        skip -= v.iov_len;
        continue;
      }
      out.push_back({static_cast<uint8_t*>(v.iov_base) + skip, v.iov_len - skip});
      skip = 0;
    }
  }
}

void ReplyQueue::DropSentPrefix() {
  if (head_ == entries_.size()) {
    entries_.clear();
    head_ = 0;
  } else if (head_ >= entries_.size() - head_) {
    // Moves at most as many entries as it drops: amortised O(1) per reply.
    entries_.erase(entries_.begin(), entries_.begin() + std::ptrdiff_t(head_));
    head_ = 0;
  }
}

}  // namespace blocksnap::io
