// The listening side of the private peer-to-peer control socket (<runtime dir>/control.sock),
// the way systemd's PID 1 serves /run/systemd/private: an AF_UNIX stream socket whose every
// accepted connection speaks D-Bus directly to the daemon, no bus daemon in between.
#pragma once

#include <string>

#include "util/status.h"
#include "util/unique_fd.h"

namespace blocksnap {

// Binds and listens on `path` (non-blocking, close-on-exec). Creates the parent directory
// (0755) when missing. A socket file left by a dead daemon is replaced; one a live daemon
// still answers on is Busy; any other file there is AlreadyExists. The socket is made
// world-connectable (0666): who may mutate is decided per call from the peer's credentials
// (credentials.h), and reading is open to all, as with systemctl status.
Result<UniqueFd> ListenControlSocket(const std::string& path);

}  // namespace blocksnap
