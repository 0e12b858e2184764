// The policy and file levels of the parser; schedules are in parse_schedule.cc.
#include "policy/parser.h"

#include <algorithm>
#include <map>

#include "policy/yaml_reader.h"

namespace blocksnap::policy {

namespace {

constexpr int kMaxSchedules = 4;

bool ParseTarget(YamlReader& r, const YAML::Node& node, Policy* out) {
  size_t before = r.error_count();
  if (!r.CheckMap(node, "target", {"tags", "match"})) return false;
  if (r.Require(node, "target", "tags")) {
    YAML::Node tags = YamlReader::Find(node, "tags");
    if (ParseTags(r, tags, "tags", /*templates=*/false, &out->target_tags) &&
        out->target_tags.empty()) {
      r.Error(tags, "'tags' in target must name at least one tag");
    }
  }
  if (YAML::Node m = YamlReader::Find(node, "match"); m.IsDefined()) {
    auto text = r.String(m, "match");
    if (text && *text == "any") {
      out->match = Match::kAny;
    } else if (text && *text == "all") {
      out->match = Match::kAll;
    } else if (text) {
      r.Error(m, "'match' must be 'any' or 'all', got '" + *text + "'");
    }
  }
  return r.error_count() == before;
}

bool ParsePolicy(YamlReader& r, const YAML::Node& node, const TimeZoneSource& zones, Policy* out) {
  size_t before = r.error_count();
  if (!r.CheckMap(node, "policy", {"name", "description", "enabled", "target", "schedules"})) {
    return false;
  }
  if (r.Require(node, "policy", "name")) {
    YAML::Node n = YamlReader::Find(node, "name");
    if (auto name = r.String(n, "name")) {
      if (auto v = ValidateName("policy name", *name); !v) {
        r.Error(n, v.error().message);
      } else {
        out->name = *name;
        out->where = r.Where(n);
      }
    }
  }
  if (YAML::Node n = YamlReader::Find(node, "description"); n.IsDefined()) {
    if (auto d = r.String(n, "description")) out->description = *d;
  }
  if (YAML::Node n = YamlReader::Find(node, "enabled"); n.IsDefined()) {
    if (auto e = r.Bool(n, "enabled")) out->enabled = *e;
  }
  if (r.Require(node, "policy", "target")) ParseTarget(r, YamlReader::Find(node, "target"), out);
  if (r.Require(node, "policy", "schedules")) {
    YAML::Node list = YamlReader::Find(node, "schedules");
    if (!list.IsSequence()) {
      r.Error(list, "'schedules' must be a list");
    } else if (list.size() < 1 || list.size() > kMaxSchedules) {
      r.Error(list, "a policy needs 1 to 4 schedules, got " + std::to_string(list.size()));
    } else {
      std::map<std::string, SourceLocation> seen;
      for (const YAML::Node& item : list) {
        Schedule s;
        if (!ParseSchedule(r, item, zones, &s)) continue;
        auto [it, fresh] = seen.emplace(s.name, s.where);
        if (!fresh) {
          r.Error(YamlReader::Find(item, "name"), "duplicate schedule name '" + s.name +
                                                      "' (first defined at line " +
                                                      std::to_string(it->second.line) + ")");
          continue;
        }
        out->schedules.push_back(std::move(s));
      }
    }
  }
  return r.error_count() == before;
}

void ParseDocument(YamlReader& r, const YAML::Node& root, const TimeZoneSource& zones,
                   std::vector<Policy>* out) {
  if (root.IsNull() || !root.IsDefined()) {
    r.Error(root, "empty policy file");
    return;
  }
  if (!root.IsMap()) {
    r.Error(root, "a policy file must hold a policy (a mapping) or a 'policies' list");
    return;
  }
  if (!YamlReader::Find(root, "policies").IsDefined()) {
    Policy p;
    if (ParsePolicy(r, root, zones, &p)) out->push_back(std::move(p));
    return;
  }
  if (!r.CheckMap(root, "a file with 'policies'", {"policies"})) return;
  YAML::Node list = YamlReader::Find(root, "policies");
  if (!list.IsSequence()) {
    r.Error(list, "'policies' must be a list");
    return;
  }
  if (list.size() == 0) {
    r.Error(list, "'policies' must list at least one policy");
    return;
  }
  std::map<std::string, SourceLocation> seen;
  for (const YAML::Node& item : list) {
    Policy p;
    if (!ParsePolicy(r, item, zones, &p)) continue;
    auto [it, fresh] = seen.emplace(p.name, p.where);
    if (!fresh) {
      r.Error(YamlReader::Find(item, "name"), "duplicate policy name '" + p.name +
                                                  "' (first defined at line " +
                                                  std::to_string(it->second.line) + ")");
      continue;
    }
    out->push_back(std::move(p));
  }
}

}  // namespace

ParsedFile ParsePolicyFile(std::string_view file, std::string_view contents,
                           const TimeZoneSource& zones) {
  ParsedFile result;
  result.file = std::string(file);
  YamlReader r(result.file);
  if (contents.size() > kMaxPolicyFileBytes) {
    r.Error(YAML::Mark::null_mark(), "policy file is larger than 1 MiB");
    result.errors = std::move(r.errors());
    return result;
  }
  try {
    std::vector<YAML::Node> docs = YAML::LoadAll(std::string(contents));
    if (docs.empty()) {
      r.Error(YAML::Mark::null_mark(), "empty policy file");
    } else if (docs.size() > 1) {
      r.Error(docs[1], "a policy file holds one YAML document; use a 'policies' list");
    } else {
      r.IndexNullValues(docs[0]);
      ParseDocument(r, docs[0], zones, &result.policies);
    }
  } catch (const YAML::Exception& e) {
    r.Error(e.mark, "YAML syntax error: " + e.msg);
  } catch (const std::exception& e) {
    r.Error(YAML::Mark::null_mark(), std::string("cannot parse: ") + e.what());
  }
  result.errors = std::move(r.errors());
  if (!result.errors.empty()) result.policies.clear();
  return result;
}

PolicySet MergePolicyFiles(std::vector<ParsedFile> files) {
  PolicySet set;
  std::map<std::string, SourceLocation> seen;
  for (ParsedFile& f : files) {
    for (Diagnostic& d : f.errors) set.errors.push_back(std::move(d));
    for (Policy& p : f.policies) {
      auto [it, fresh] = seen.emplace(p.name, p.where);
      if (!fresh) {
        set.errors.push_back({p.where, "duplicate policy name '" + p.name + "' (first defined at " +
                                           it->second.ToString() + ")"});
        continue;
      }
      set.policies.push_back(std::move(p));
    }
  }
  return set;
}

PolicySet ParsePolicyFiles(std::vector<PolicyFileText> files, const TimeZoneSource& zones) {
  std::sort(files.begin(), files.end(),
            [](const PolicyFileText& a, const PolicyFileText& b) { return a.name < b.name; });
  std::vector<ParsedFile> parsed;
  for (const PolicyFileText& f : files)
    parsed.push_back(ParsePolicyFile(f.name, f.contents, zones));
  return MergePolicyFiles(std::move(parsed));
}

}  // namespace blocksnap::policy
