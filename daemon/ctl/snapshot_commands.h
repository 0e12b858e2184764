// `blocksnapctl snapshot ...`: create [--wait], list, show, delete, tag, dump, verify, diff.
#pragma once

#include <CLI/CLI.hpp>

#include "ctl/command_context.h"

namespace blocksnap::ctl {

// Adds the "snapshot" subcommand group to app. ctx must outlive app's parse and the action.
void AddSnapshotCommands(CLI::App& app, CommandContext& ctx);

}  // namespace blocksnap::ctl
