// Listening sockets of the NBD server: TCP ("HOST:PORT", "[::1]:PORT"), a unix socket, and
// sockets inherited from systemd socket activation. Control plane: returns Status.
#pragma once

#include <sys/socket.h>

#include <string>
#include <vector>

#include "util/status.h"
#include "util/unique_fd.h"

namespace blocksnap::io {

// Splits "HOST:PORT" or "[V6ADDR]:PORT" into host and port.
Result<std::pair<std::string, std::string>> SplitHostPort(const std::string& spec);

// A non-blocking listening TCP socket on spec (SO_REUSEADDR; IPv6 sockets are V6ONLY).
Result<UniqueFd> ListenTcp(const std::string& spec);

// A listening unix stream socket at path; a stale socket file left by a previous run is
// replaced, any other existing file is an error.
Result<UniqueFd> ListenUnix(const std::string& path);

// The listening sockets systemd passed (LISTEN_FDS/LISTEN_PID), marked close-on-exec.
// Empty when the daemon was not socket-activated. Unsets the variables.
std::vector<int> InheritedListenFds();

// "127.0.0.1:53412", "[::1]:53412" or "unix".
std::string FormatPeer(const sockaddr_storage& addr, socklen_t len);

}  // namespace blocksnap::io
