// blocksnapctl: the command-line client of blocksnapd's control plane (DESIGN.md §7).
//
//   blocksnapctl [--control PATH] [--json] volume create|list|show|delete|tag|untag ...
//
// Exit status: 0 success; 1 the operation failed, with one line "blocksnapctl: <reason>" on
// stderr; 2 the command line was malformed. Each command group lives in its own file
// (volume_commands.cc, ...) and registers itself below.

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>

#include "config/config.h"
#include "ctl/command_context.h"
#include "ctl/output.h"
#include "ctl/policy_commands.h"
#include "ctl/snapshot_commands.h"  // snapshots
#include "ctl/status_commands.h"    // snapshots
#include "ctl/volume_commands.h"

namespace blocksnap::ctl {
namespace {

// $BLOCKSNAP_CONTROL, else where blocksnapd puts its socket by default, as the daemon itself
// computes it (config/config.h): /run/blocksnap as root, $XDG_RUNTIME_DIR/blocksnap (or
// /tmp/blocksnap-UID) otherwise, or what the default config file says.
std::string DefaultControlSocket() {
  if (const char* env = std::getenv("BLOCKSNAP_CONTROL"); env && *env) return env;
  return DefaultControlPath(Environment::FromProcess());
}

int Main(int argc, char** argv) {
  CommandContext ctx;
  ctx.control_path = DefaultControlSocket();

  CLI::App app{"blocksnapctl: control blocksnapd, the block-device snapshot daemon"};
  app.name("blocksnapctl");
  app.add_option("--control", ctx.control_path,
                 "blocksnapd's control socket (default: $BLOCKSNAP_CONTROL, else the "
                 "daemon's default)")
      ->capture_default_str();
  app.add_flag("--json", ctx.json, "Print one JSON document instead of text");
  app.require_subcommand(1);
  // Global options are accepted after the subcommand too: `volume list --json`.
  app.fallthrough();

  AddVolumeCommands(app, ctx);
  AddPolicyCommands(app, ctx);
  AddSnapshotCommands(app, ctx);  // snapshots
  AddStatusCommand(app, ctx);     // snapshots

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "blocksnapctl: " << e.what() << " (see --help)\n";
    return kExitUsage;
  }
  if (!ctx.action) {
    std::cerr << "blocksnapctl: no command given (see --help)\n";
    return kExitUsage;
  }
  return ctx.action();
}

}  // namespace
}  // namespace blocksnap::ctl

int main(int argc, char** argv) {
  try {
    return blocksnap::ctl::Main(argc, argv);
  } catch (const std::exception& e) {
    return blocksnap::ctl::Fail(std::string("internal error: ") + e.what());
  }
}
