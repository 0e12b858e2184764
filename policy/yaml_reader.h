// Internal to the parser: strict accessors over yaml-cpp nodes that record diagnostics with
// the node's position instead of throwing.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "policy/parser.h"

namespace blocksnap::policy {

class YamlReader {
 public:
  explicit YamlReader(std::string file) : file_(std::move(file)) {}

  // Records "file:line:col: reason" at `node` (or at `mark`). A null value of a mapping
  // ("name:" with nothing after it) is reported at its key (see IndexNullValues).
  void Error(const YAML::Node& node, std::string reason) { Error(MarkOf(node), std::move(reason)); }
  void Error(const YAML::Mark& mark, std::string reason);
  SourceLocation Where(const YAML::Node& node) const;

  // Remembers the key of every null mapping value under `root`: yaml-cpp places such a value
  // at the token after it, usually on the next line, which is not where the mistake is.
  void IndexNullValues(const YAML::Node& root);

  const std::string& file() const { return file_; }
  std::vector<Diagnostic>& errors() { return errors_; }
  size_t error_count() const { return errors_.size(); }

  // `node` must be a mapping whose keys are unique scalars out of `allowed`; reports
  // "<what> must be a mapping", "unknown key 'k' in <what> (allowed: ...)" and
  // "duplicate key 'k' in <what>". Returns false when `node` is not a mapping.
  bool CheckMap(const YAML::Node& node, const std::string& what,
                std::initializer_list<const char*> allowed);
  // The value under `key` (first occurrence), or an undefined node.
  static YAML::Node Find(const YAML::Node& map, const std::string& key);
  // The key node of `key`, for positions.
  static YAML::Node FindKey(const YAML::Node& map, const std::string& key);
  // Reports "<what> is missing required key 'key'" at the mapping and returns false if absent.
  bool Require(const YAML::Node& map, const std::string& what, const std::string& key);

  // Typed values. Each reports a type error at the value and returns nullopt on mismatch.
  std::optional<std::string> String(const YAML::Node& value, const std::string& key);
  std::optional<bool> Bool(const YAML::Node& value, const std::string& key);
  std::optional<int> Int(const YAML::Node& value, const std::string& key, int lo, int hi);

 private:
  YAML::Mark MarkOf(const YAML::Node& node) const;

  std::string file_;
  std::vector<Diagnostic> errors_;
  std::vector<std::pair<YAML::Node, YAML::Mark>> null_keys_;  // null value -> its key's mark
};

// Parses one entry of `schedules` (parse_schedule.cc). Returns false after recording errors.
bool ParseSchedule(YamlReader& r, const YAML::Node& node, const TimeZoneSource& zones,
                   Schedule* out);

// Parses a tag mapping; `templates` allows {placeholders} in values. False after errors.
bool ParseTags(YamlReader& r, const YAML::Node& node, const std::string& key, bool templates,
               Tags* out);

}  // namespace blocksnap::policy
