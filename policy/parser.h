// Policy files: YAML in, validated policies or "file:line:col: reason" diagnostics out.
//
// A file holds one policy (a mapping) or several (a mapping with the single key `policies`
// holding a list). Validation is strict: unknown or duplicate keys, wrong types, bad
// durations, times, cron fields or time zones, counts out of range, duplicate policy or
// schedule names and 0 or more than 4 schedules are all errors. A file with any error yields
// no policies at all (the scheduler skips it and keeps running the others). The format is
// documented in docs/policies.md. Parsing does no I/O: zone data comes from `zones`.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "policy/model.h"
#include "policy/time_zone.h"

namespace blocksnap::policy {

// One problem in a file. ToString() gives "file:line:col: reason" (1-based line and column).
struct Diagnostic {
  SourceLocation where;
  std::string reason;
  std::string ToString() const { return where.ToString() + ": " + reason; }
};

struct ParsedFile {
  std::string file;
  std::vector<Policy> policies;    // empty when errors is not
  std::vector<Diagnostic> errors;  // in file order
  bool ok() const { return errors.empty(); }
};

// Parses one file's contents. `file` is only used in messages. Never throws: yaml-cpp's
// exceptions become diagnostics. Time zones named in the file are loaded through `zones`.
ParsedFile ParsePolicyFile(std::string_view file, std::string_view contents,
                           const TimeZoneSource& zones);

// The policies of several files, in the given order (callers sort by file name), with the
// errors of every bad file. A policy whose name an earlier file already used is dropped and
// reported: "b.yaml:1:7: duplicate policy name 'x' (first defined at a.yaml:1:7)".
struct PolicySet {
  std::vector<Policy> policies;
  std::vector<Diagnostic> errors;
};
PolicySet MergePolicyFiles(std::vector<ParsedFile> files);

// A policy file as read by the caller (the daemon's policy directory, or blocksnapctl's
// arguments): its name for messages and its contents.
struct PolicyFileText {
  std::string name;
  std::string contents;
};

// Parses each file and merges them, files taken in name order so duplicates are reported
// the same way on every load. This is what the daemon (at start and reload) and
// `blocksnapctl policy validate` call after reading `*.yaml`.
PolicySet ParsePolicyFiles(std::vector<PolicyFileText> files, const TimeZoneSource& zones);

// Policy files larger than this are rejected unparsed.
inline constexpr size_t kMaxPolicyFileBytes = 1 << 20;

}  // namespace blocksnap::policy
