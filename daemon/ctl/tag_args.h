// The tag arguments of the volume and snapshot commands. They are checked on the client side:
// a typo is reported without a round trip, in the daemon's own words (the same parse.h
// functions).
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

#include "util/parse.h"
#include "util/status.h"

namespace blocksnap::ctl {

// "K=V" assignments as tags.
Result<Tags> ParseTagList(const std::vector<std::string>& assignments);

// The tags a `tag` command sets; the keys it removes are checked too.
Result<Tags> ParseTagEdit(const std::vector<std::string>& assignments,
                          const std::vector<std::string>& untag_keys);

// Adds the TAGS and --untag options to a `tag` subcommand (named `command` in errors). Its
// callback refuses a command line with neither, else calls chosen().
void AddTagEditOptions(CLI::App* tag, const std::string& command,
                       std::vector<std::string>* assignments, std::vector<std::string>* untag_keys,
                       std::function<void()> chosen);

}  // namespace blocksnap::ctl
