// Reads the policy directory: every regular "*.yaml" file in name order, parsed and merged
// by the policy library. Shared by blocksnapd (start, reload) and `blocksnapctl policy
// validate`, so both judge files the same way.
#pragma once

#include <string>
#include <vector>

#include "policy/parser.h"

namespace blocksnap::scheduler {

// The "*.yaml" files of `dir`, sorted by name. A missing directory gives none; another
// failure to list it, or a file that cannot be read, becomes a diagnostic of the result.
std::vector<std::string> ListPolicyFiles(const std::string& dir, std::vector<std::string>* errors);

// Reads and parses `files` (paths; named in messages as given). Unreadable or oversized
// files are reported as "<file>:1:1: <reason>" and skipped; the rest are parsed.
policy::PolicySet LoadPolicyFiles(const std::vector<std::string>& files);

// ListPolicyFiles + LoadPolicyFiles. `listed` is false when the directory exists but could
// not be listed (EACCES, ELOOP, EIO): then `set` holds only that error, which says nothing
// about the policies in it.
struct PolicyDirLoad {
  policy::PolicySet set;
  bool listed = true;
};
PolicyDirLoad LoadPolicyDir(const std::string& dir);

}  // namespace blocksnap::scheduler
