#include "io/listeners.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace blocksnap::io {
namespace {

constexpr int kBacklog = 256;

}  // namespace

Result<std::pair<std::string, std::string>> SplitHostPort(const std::string& spec) {
  std::string host, port;
  if (!spec.empty() && spec[0] == '[') {
    auto close = spec.find(']');
    if (close == std::string::npos || close + 1 >= spec.size() || spec[close + 1] != ':') {
      return InvalidArgument("listen address '" + spec + "': expected [ADDR]:PORT");
    }
    host = spec.substr(1, close - 1);
    port = spec.substr(close + 2);
  } else {
    auto colon = spec.rfind(':');
    if (colon == std::string::npos) {
      return InvalidArgument("listen address '" + spec + "': expected HOST:PORT");
    }
    host = spec.substr(0, colon);
    port = spec.substr(colon + 1);
  }
  if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos) {
    return InvalidArgument("listen address '" + spec + "': bad port");
  }
  return std::pair{host, port};
}

Result<UniqueFd> ListenTcp(const std::string& spec) {
  BS_ASSIGN_OR_RETURN(auto hp, SplitHostPort(spec));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  int gai =
      ::getaddrinfo(hp.first.empty() ? nullptr : hp.first.c_str(), hp.second.c_str(), &hints, &res);
  if (gai != 0) {
    return InvalidArgument("listen address '" + spec + "': " + ::gai_strerror(gai));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(res, &::freeaddrinfo);
  UniqueFd fd(::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return FromErrno(errno, "creating socket for " + spec);
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (res->ai_family == AF_INET6) {
    ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  }
  if (::bind(fd.get(), res->ai_addr, res->ai_addrlen) < 0) {
    return FromErrno(errno, "binding " + spec);
  }
  if (::listen(fd.get(), kBacklog) < 0) return FromErrno(errno, "listening on " + spec);
  return fd;
}

Result<UniqueFd> ListenUnix(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return InvalidArgument("unix socket path '" + path + "' is empty or too long");
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return AlreadyExists("'" + path + "' exists and is not a socket");
    }
    ::unlink(path.c_str());  // stale socket of an earlier run
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return FromErrno(errno, "creating unix socket");
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
    return FromErrno(errno, "binding " + path);
  }
  if (::listen(fd.get(), kBacklog) < 0) return FromErrno(errno, "listening on " + path);
  return fd;
}

std::vector<int> InheritedListenFds() {
  std::vector<int> fds;
  int n = sd_listen_fds(1);
  for (int i = 0; i < n; ++i) {
    int fd = SD_LISTEN_FDS_START + i;
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    fds.push_back(fd);
  }
  return fds;
}

std::string FormatPeer(const sockaddr_storage& addr, socklen_t len) {
  char host[INET6_ADDRSTRLEN] = "?";
  if (addr.ss_family == AF_INET && len >= sizeof(sockaddr_in)) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(addr);
    ::inet_ntop(AF_INET, &a.sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(ntohs(a.sin_port));
  }
  if (addr.ss_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(addr);
    ::inet_ntop(AF_INET6, &a.sin6_addr, host, sizeof host);
    return "[" + std::string(host) + "]:" + std::to_string(ntohs(a.sin6_port));
  }
  return "unix";
}

}  // namespace blocksnap::io
