// Meta context negotiation: matching client queries against an export's contexts.
//
// An export names its contexts (Export::MetaContexts); the session refers to a selected
// context by its index in that list, and the wire id is index + 1 (0 is what LIST replies
// carry, per the spec). New contexts (e.g. "blocksnap:changed:<id>") need no change here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace blocksnap::nbd {

// Indices of `available` that answer the LIST queries: an empty query list or a query
// ending in ':' (a namespace such as "base:") matches by prefix; other queries match exactly.
std::vector<size_t> MatchListQueries(const std::vector<std::string>& available,
                                     const std::vector<std::string>& queries);

// Indices of `available` selected by SET queries: exact names only, without duplicates.
std::vector<size_t> MatchSetQueries(const std::vector<std::string>& available,
                                    const std::vector<std::string>& queries);

inline uint32_t ContextWireId(size_t index) {
  return uint32_t(index + 1);
}

}  // namespace blocksnap::nbd
