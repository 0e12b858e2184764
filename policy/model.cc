#include "policy/model.h"

namespace blocksnap::policy {

bool MatchesTarget(const Policy& policy, const Tags& volume_tags) {
  bool any = false, all = true;
  for (const auto& [key, value] : policy.target_tags) {
    auto it = volume_tags.find(key);
    bool hit = it != volume_tags.end() && it->second == value;
    any = any || hit;
    all = all && hit;
  }
  if (policy.target_tags.empty()) return false;
  return policy.match == Match::kAll ? all : any;
}

}  // namespace blocksnap::policy
