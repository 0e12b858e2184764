// `blocksnapctl policy ...`: list, show, validate, plan, run, reload.
#pragma once

#include <CLI/CLI.hpp>

#include "ctl/command_context.h"

namespace blocksnap::ctl {

// Adds the "policy" subcommand group to app. ctx must outlive app's parse and the action.
void AddPolicyCommands(CLI::App& app, CommandContext& ctx);

}  // namespace blocksnap::ctl
