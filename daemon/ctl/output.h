// blocksnapctl's output: aligned tables and "Key: value" blocks for people, one JSON
// document for scripts, and the one-line error convention. blocksnapctl prints; it never
// logs.
#pragma once

#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/parse.h"
#include "util/status.h"

namespace blocksnap::ctl {

// Exit statuses: 0 success, 1 the operation failed (the daemon or a value said no), 2 the
// command line was malformed.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// Columns left-aligned, padded to their widest cell, two spaces apart; the last column is not
// padded (no trailing blanks). The header row is printed as given (upper case by convention).
class Table {
 public:
  explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
  void AddRow(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  void Print(std::ostream& out) const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// "Key: value" lines with the values aligned after the longest key. A value with newlines
// continues on indented lines.
class Details {
 public:
  void Add(std::string key, std::string value) {
    items_.emplace_back(std::move(key), std::move(value));
  }
  void Print(std::ostream& out) const;

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

// "k=v,k2=v2", or "-" when there are none.
std::string FormatTagList(const Tags& tags);

// Pretty-prints one JSON document and a newline to stdout.
void PrintJson(const nlohmann::ordered_json& doc);

// Prints "blocksnapctl: <message>" as one line on stderr (newlines in the message are folded
// to spaces) and returns kExitFailure.
int Fail(const Status& status);
int Fail(const std::string& message);

}  // namespace blocksnap::ctl
