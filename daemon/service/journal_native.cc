#include "service/journal_native.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>

namespace blocksnap {

std::string EncodeJournalEntry(const JournalEntry& entry) {
  std::string out;
  for (const auto& [name, value] : entry) {
    out += name;
    if (value.find('\n') == std::string::npos) {
      out += '=';
    } else {
      out += '\n';
      uint64_t size = value.size();
      for (int i = 0; i < 8; ++i) out += static_cast<char>((size >> (8 * i)) & 0xff);
    }
    out += value;
    out += '\n';
  }
  return out;
}

JournalSocket::JournalSocket(std::string path)
    : path_(std::move(path)), fd_(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {}

int JournalSocket::Send(const JournalEntry& entry) {
  if (!fd_) return -EBADF;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path_.size() >= sizeof(addr.sun_path)) return -ENAMETOOLONG;
  std::memcpy(addr.sun_path, path_.data(), path_.size());
  std::string data = EncodeJournalEntry(entry);
  ssize_t n = ::sendto(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL,
                       reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  return n < 0 ? -errno : 0;
}

}  // namespace blocksnap
