#include "ctl/tag_args.h"

#include <utility>

namespace blocksnap::ctl {

Result<Tags> ParseTagList(const std::vector<std::string>& assignments) {
  Tags tags;
  for (const std::string& a : assignments) {
    BS_ASSIGN_OR_RETURN(auto kv, ParseTagAssignment(a));
    tags[kv.first] = kv.second;
  }
  return tags;
}

Result<Tags> ParseTagEdit(const std::vector<std::string>& assignments,
                          const std::vector<std::string>& untag_keys) {
  Result<Tags> set = ParseTagList(assignments);
  if (!set.ok()) return set;
  for (const std::string& key : untag_keys)
    if (Status st = ValidateTag(key, ""); !st.ok()) return st;
  return set;
}

void AddTagEditOptions(CLI::App* tag, const std::string& command,
                       std::vector<std::string>* assignments, std::vector<std::string>* untag_keys,
                       std::function<void()> chosen) {
  tag->add_option("TAGS", *assignments, "Tags to set, K=V");
  tag->add_option("--untag", *untag_keys, "Tag key to remove (repeatable)")
      ->allow_extra_args(false);
  tag->callback([command, assignments, untag_keys, chosen = std::move(chosen)] {
    if (assignments->empty() && untag_keys->empty())
      throw CLI::ValidationError(command, "give at least one K=V or --untag K");
    chosen();
  });
}

}  // namespace blocksnap::ctl
