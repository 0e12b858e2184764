#include "policy/yaml_reader.h"

#include <algorithm>

namespace blocksnap::policy {

void YamlReader::Error(const YAML::Mark& mark, std::string reason) {
  SourceLocation where{file_, mark.line + 1, mark.column + 1};
  if (mark.is_null()) where = {file_, 1, 1};
  errors_.push_back({std::move(where), std::move(reason)});
}

YAML::Mark YamlReader::MarkOf(const YAML::Node& node) const {
  if (node.IsDefined() && node.IsNull()) {
    for (const auto& [value, key_mark] : null_keys_) {
      if (value.is(node)) return key_mark;
    }
  }
  return node.Mark();
}

void YamlReader::IndexNullValues(const YAML::Node& root) {
  std::vector<YAML::Node> todo{root};  // no recursion: documents may nest deeply
  while (!todo.empty()) {
    YAML::Node node = todo.back();
    todo.pop_back();
    if (node.IsMap()) {
      for (const auto& kv : node) {
        if (kv.second.IsNull()) null_keys_.emplace_back(kv.second, kv.first.Mark());
        todo.push_back(kv.second);
      }
    } else if (node.IsSequence()) {
      for (const YAML::Node& item : node) todo.push_back(item);
    }
  }
}

SourceLocation YamlReader::Where(const YAML::Node& node) const {
  YAML::Mark mark = MarkOf(node);
  if (mark.is_null()) return {file_, 1, 1};
  return {file_, mark.line + 1, mark.column + 1};
}

bool YamlReader::CheckMap(const YAML::Node& node, const std::string& what,
                          std::initializer_list<const char*> allowed) {
  if (!node.IsMap()) {
    Error(node, what + " must be a mapping");
    return false;
  }
  std::vector<std::string> seen;
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) {
      Error(kv.first, "keys in " + what + " must be plain names");
      continue;
    }
    const std::string& key = kv.first.Scalar();
    bool known = false;
    for (const char* a : allowed) known = known || key == a;
    if (!known) {
      std::string list;
      for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      Error(kv.first, "unknown key '" + key + "' in " + what + " (allowed: " + list + ")");
    } else if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
      Error(kv.first, "duplicate key '" + key + "' in " + what);
    }
    seen.push_back(key);
  }
  return true;
}

YAML::Node YamlReader::Find(const YAML::Node& map, const std::string& key) {
  for (const auto& kv : map) {
    if (kv.first.IsScalar() && kv.first.Scalar() == key) return kv.second;
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

YAML::Node YamlReader::FindKey(const YAML::Node& map, const std::string& key) {
  for (const auto& kv : map) {
    if (kv.first.IsScalar() && kv.first.Scalar() == key) return kv.first;
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

bool YamlReader::Require(const YAML::Node& map, const std::string& what, const std::string& key) {
  if (Find(map, key).IsDefined()) return true;
  Error(map, what + " is missing required key '" + key + "'");
  return false;
}

std::optional<std::string> YamlReader::String(const YAML::Node& value, const std::string& key) {
  if (!value.IsScalar()) {
    Error(value, "'" + key + "' must be a string");
    return std::nullopt;
  }
  return value.Scalar();
}

std::optional<bool> YamlReader::Bool(const YAML::Node& value, const std::string& key) {
  if (value.IsScalar() && value.Tag() != "!") {  // "!" marks a quoted scalar: a string
    const std::string& s = value.Scalar();
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
  }
  Error(value, "'" + key + "' must be true or false");
  return std::nullopt;
}

std::optional<int> YamlReader::Int(const YAML::Node& value, const std::string& key, int lo,
                                   int hi) {
  std::string text = value.IsScalar() ? value.Scalar() : "";
  std::string magnitude = !text.empty() && text[0] == '-' ? text.substr(1) : text;
  bool digits =
      value.IsScalar() && value.Tag() != "!" && !magnitude.empty() && magnitude.size() <= 9;
  for (char c : magnitude) digits = digits && c >= '0' && c <= '9';
  if (!digits) {
    Error(value, "'" + key + "' must be an integer");
    return std::nullopt;
  }
  int v = std::stoi(text);
  if (v < lo || v > hi) {
    Error(value, "'" + key + "' must be between " + std::to_string(lo) + " and " +
                     std::to_string(hi) + ", got " + std::to_string(v));
    return std::nullopt;
  }
  return v;
}

}  // namespace blocksnap::policy
