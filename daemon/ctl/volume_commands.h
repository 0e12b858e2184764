// `blocksnapctl volume ...`: create, list, show, delete, tag, untag.
#pragma once

#include <CLI/CLI.hpp>

#include "ctl/command_context.h"

namespace blocksnap::ctl {

// Adds the "volume" subcommand group to app. ctx must outlive app's parse and the action.
void AddVolumeCommands(CLI::App& app, CommandContext& ctx);

}  // namespace blocksnap::ctl
