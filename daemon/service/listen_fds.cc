#include "service/listen_fds.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cstring>

namespace blocksnap {

std::vector<int> TakeListenFds() {
  std::vector<int> fds;
  int n = sd_listen_fds(1);
  if (n < 0) {
    spdlog::warn("reading LISTEN_FDS: {}, ignoring inherited sockets", strerror(-n));
    return fds;
  }
  for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; ++fd) {
    if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
      spdlog::warn("inherited fd {} is not a listening stream socket, closing it", fd);
      ::close(fd);
      continue;
    }
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    fds.push_back(fd);
  }
  return fds;
}

std::string DescribeSocket(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    return "fd " + std::to_string(fd);
  char host[INET6_ADDRSTRLEN] = {};
  switch (ss.ss_family) {
    case AF_INET: {
      const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
      inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
      return std::string(host) + ":" + std::to_string(ntohs(in->sin_port));
    }
    case AF_INET6: {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
      inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
      return "[" + std::string(host) + "]:" + std::to_string(ntohs(in6->sin6_port));
    }
    case AF_UNIX: {
      const auto* un = reinterpret_cast<const sockaddr_un*>(&ss);
      size_t path_len =
          len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
      if (path_len == 0) return "unix socket (unnamed)";
      if (un->sun_path[0] == '\0')  // abstract namespace
        return "@" + std::string(un->sun_path + 1, path_len - 1);
      return std::string(un->sun_path, strnlen(un->sun_path, path_len));
    }
    default:
      return "fd " + std::to_string(fd);
  }
}

std::string DescribeSockets(const std::vector<int>& fds) {
  std::string out;
  for (int fd : fds) {
    if (!out.empty()) out += ", ";
    out += DescribeSocket(fd);
  }
  return out;
}

std::string DescribeEndpoints(const std::vector<std::string>& listen,
                              const std::string& unix_path) {
  std::string out;
  for (const auto& a : listen) {
    if (a.empty() || a == "none") continue;
    if (!out.empty()) out += ", ";
    out += a;
  }
  if (!unix_path.empty()) out += (out.empty() ? "" : ", ") + unix_path;
  return out.empty() ? "no sockets" : out;
}

}  // namespace blocksnap
