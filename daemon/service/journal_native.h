// journald's native protocol (systemd.io/JOURNAL_NATIVE_PROTOCOL): one datagram per entry,
// each field "NAME=value\n", or "NAME\n<64-bit LE length><value>\n" when the value contains a
// newline. Used by the journal sink when BLOCKSNAP_JOURNAL_SOCKET points it at a socket other
// than the system journal's (tests); the system journal itself is reached via sd_journal_sendv.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/unique_fd.h"

namespace blocksnap {

using JournalEntry = std::vector<std::pair<std::string, std::string>>;

// The datagram payload for one entry.
std::string EncodeJournalEntry(const JournalEntry& entry);

// An unbound AF_UNIX datagram socket that sends entries to one path.
class JournalSocket {
 public:
  explicit JournalSocket(std::string path);
  // Sends one entry; 0 or -errno.
  int Send(const JournalEntry& entry);

 private:
  std::string path_;
  UniqueFd fd_;
};

}  // namespace blocksnap
