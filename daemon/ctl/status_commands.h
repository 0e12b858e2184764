// `blocksnapctl status`: what the store holds (stored bytes, chunks, dedup ratio).
#pragma once

#include <CLI/CLI.hpp>

#include "ctl/command_context.h"

namespace blocksnap::ctl {

void AddStatusCommand(CLI::App& app, CommandContext& ctx);

}  // namespace blocksnap::ctl
