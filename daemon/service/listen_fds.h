// Socket activation: the listening sockets systemd (blocksnapd.socket) or
// systemd-socket-activate hands the daemon through LISTEN_FDS / LISTEN_PID.
#pragma once

#include <string>
#include <vector>

namespace blocksnap {

// Takes the inherited sockets (sd_listen_fds, which also unsets LISTEN_* so children do not
// see them). Keeps only listening stream sockets (sd_is_socket) and marks them close-on-exec;
// any other inherited fd is logged and closed. The caller owns the returned fds (the NBD
// server accepts on them: NbdServerOptions::inherited_fds). Empty when not socket-activated.
std::vector<int> TakeListenFds();

// A listening socket's local address for logs and STATUS=: "127.0.0.1:10809", "[::1]:10809",
// "/run/blocksnap/nbd.sock", or "fd N" when it cannot be read.
std::string DescribeSocket(int fd);

// The addresses of several sockets, joined with ", ".
std::string DescribeSockets(const std::vector<int>& fds);

// The configured NBD endpoints (TCP addresses, then the unix socket if any) joined with ", ",
// or "no sockets" when there are none.
std::string DescribeEndpoints(const std::vector<std::string>& listen, const std::string& unix_path);

}  // namespace blocksnap
