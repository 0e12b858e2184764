#include "nbd/meta_context.h"

#include <algorithm>

namespace blocksnap::nbd {

std::vector<size_t> MatchListQueries(const std::vector<std::string>& available,
                                     const std::vector<std::string>& queries) {
  std::vector<size_t> out;
  for (size_t i = 0; i < available.size(); ++i) {
    bool match = queries.empty();
    for (const auto& q : queries) {
      if (q == available[i] || (!q.empty() && q.back() == ':' && available[i].starts_with(q))) {
        match = true;
      }
    }
    if (match) out.push_back(i);
  }
  return out;
}

std::vector<size_t> MatchSetQueries(const std::vector<std::string>& available,
                                    const std::vector<std::string>& queries) {
  std::vector<size_t> out;
  for (const auto& q : queries) {
    auto it = std::find(available.begin(), available.end(), q);
    if (it == available.end()) continue;
    size_t i = size_t(it - available.begin());
    if (std::find(out.begin(), out.end(), i) == out.end()) out.push_back(i);
  }
  return out;
}

}  // namespace blocksnap::nbd
