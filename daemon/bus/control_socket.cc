#include "bus/control_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace blocksnap {
namespace {

Result<sockaddr_un> MakeAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty()) return InvalidArgument("empty control socket path");
  if (path.size() >= sizeof(addr.sun_path))
    return InvalidArgument("control socket path too long (max " +
                           std::to_string(sizeof(addr.sun_path) - 1) + " bytes): " + path);
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

// Decides what to do with an existing file at path: Ok when it is a stale socket (removed
// here), an error otherwise.
Status ClearStaleSocket(const std::string& path, const sockaddr_un& addr) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return FromErrno(errno, "inspecting " + path);
  }
  if (!S_ISSOCK(st.st_mode))
    return AlreadyExists(path + " exists and is not a socket; not replacing it");
  UniqueFd probe(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!probe) return FromErrno(errno, "creating a socket");
  if (connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0)
    return Busy("another blocksnapd is already listening on " + path);
  if (errno != ECONNREFUSED && errno != ENOENT) return FromErrno(errno, "probing " + path);
  if (unlink(path.c_str()) != 0 && errno != ENOENT)
    return FromErrno(errno, "removing the stale socket " + path);
  return Status::Ok();
}

}  // namespace

Result<UniqueFd> ListenControlSocket(const std::string& path) {
  BS_ASSIGN_OR_RETURN(sockaddr_un addr, MakeAddress(path));

  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    if (std::filesystem::create_directories(parent, ec))
      std::filesystem::permissions(parent, std::filesystem::perms(0755),
                                   std::filesystem::perm_options::replace, ec);
    if (ec) return FromErrno(ec.value(), "creating " + parent.string());
  }
  BS_RETURN_IF_ERROR(ClearStaleSocket(path, addr));

  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return FromErrno(errno, "creating the control socket");
  if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
    return FromErrno(errno, "binding the control socket " + path);
  // chmod after bind: bind honours the umask, and fchmod does not apply to socket files.
  if (chmod(path.c_str(), 0666) != 0) {
    const int err = errno;
    unlink(path.c_str());
    return FromErrno(err, "setting the mode of " + path);
  }
  if (listen(fd.get(), SOMAXCONN) != 0) {
    const int err = errno;
    unlink(path.c_str());
    return FromErrno(err, "listening on " + path);
  }
  return fd;
}

}  // namespace blocksnap
