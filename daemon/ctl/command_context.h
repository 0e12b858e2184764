// CommandContext: what every blocksnapctl command group shares. main.cc parses the global
// options into it; each group (volume_commands.cc, later snapshot_commands.cc, ...) registers
// its subcommands with CLI11 and, when one is chosen, stores the work to run in `action`.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "ctl/bus_client.h"
#include "util/status.h"

namespace blocksnap::ctl {

struct CommandContext {
  std::string control_path;
  bool json = false;
  // Set by the chosen subcommand's parse callback; returns the exit status.
  std::function<int()> action;

  // The connection to the daemon, made on first use so that usage errors never need one.
  Result<BusClient*> Client() {
    if (!client_) {
      Result<std::unique_ptr<BusClient>> c = BusClient::Connect(control_path);
      if (!c.ok()) return c.status();
      client_ = std::move(c).value();
    }
    return client_.get();
  }

 private:
  std::unique_ptr<BusClient> client_;
};

}  // namespace blocksnap::ctl
