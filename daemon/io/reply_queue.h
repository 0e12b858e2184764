// ReplyQueue: one connection's replies waiting to be sent, in completion order, and how far
// the first of them has gone. A send gathers the unsent bytes as iovecs; what it moved is
// then consumed front to back, and each reply sent in full is handed back for release.
//
// Memory stays bounded under steady pipelined load, where replies keep completing while a
// send is in flight and the queue may never run empty: the sent prefix is dropped once it
// is as long as what is stored after it.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <vector>

#include "nbd/transmission.h"

namespace blocksnap::io {

class ReplyQueue {
 public:
  // slot->iov holds the whole reply.
  void Push(nbd::Slot& slot);
  bool empty() const { return head_ == entries_.size(); }
  // Appends the unsent bytes to out as iovecs, until out holds max_iov of them.
  void Gather(std::vector<iovec>& out, size_t max_iov) const;
  // A send moved `sent` bytes: calls release(slot) for every reply now sent in full.
  template <class Release>
  void Consume(size_t sent, Release&& release);
  // Drops every unsent reply, calling release(slot) for each.
  template <class Release>
  void Clear(Release&& release);
  // Entries held, sent or not: what the bound above is about.
  size_t stored() const { return entries_.size(); }

 private:
  struct Entry {
    nbd::Slot* slot;
    size_t total;  // bytes of the reply
  };
  void DropSentPrefix();

  std::vector<Entry> entries_;
  size_t head_ = 0;       // first unsent entry
  size_t head_sent_ = 0;  // bytes of it already sent
};

template <class Release>
void ReplyQueue::Consume(size_t sent, Release&& release) {
  while (sent > 0 && head_ < entries_.size()) {
    Entry& e = entries_[head_];
    size_t left = e.total - head_sent_;
    if (sent < left) {
      head_sent_ += sent;
      break;
    }
    sent -= left;
    head_sent_ = 0;
    ++head_;
    release(*e.slot);
  }
  DropSentPrefix();
}

template <class Release>
void ReplyQueue::Clear(Release&& release) {
  for (size_t i = head_; i < entries_.size(); ++i) release(*entries_[i].slot);
  entries_.clear();
  head_ = head_sent_ = 0;
}

}  // namespace blocksnap::io
