#include "ctl/output.h"

#include <algorithm>
#include <iostream>

namespace blocksnap::ctl {
namespace {

void PrintRow(std::ostream& out, const std::vector<std::string>& cells,
              const std::vector<size_t>& widths) {
  std::string line;
  for (size_t i = 0; i < cells.size(); ++i) {
    line += cells[i];
    if (i + 1 < cells.size()) line += std::string(widths[i] - cells[i].size() + 2, ' ');
  }
  out << line << '\n';
}

}  // namespace

void Table::Print(std::ostream& out) const {
  std::vector<size_t> widths(headers_.size(), 0);
  auto widen = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i)
      widths[i] = std::max(widths[i], row[i].size());
  };
  widen(headers_);
  for (const auto& row : rows_) widen(row);
  PrintRow(out, headers_, widths);
  for (const auto& row : rows_) PrintRow(out, row, widths);
}

void Details::Print(std::ostream& out) const {
  size_t width = 0;
  for (const auto& [key, value] : items_) width = std::max(width, key.size() + 1);
  for (const auto& [key, value] : items_) {
    const std::string label = key + ":";
    const std::string indent(width + 1, ' ');
    std::string text;
    for (char c : value) {
      text += c;
      if (c == '\n') text += indent;
    }
    out << label << std::string(width - label.size() + 1, ' ') << text << '\n';
  }
}

std::string FormatTagList(const Tags& tags) {
  if (tags.empty()) return "-";
  std::string out;
  for (const auto& [key, value] : tags) {
    if (!out.empty()) out += ',';
    out += key + "=" + value;
  }
  return out;
}

void PrintJson(const nlohmann::ordered_json& doc) {
  // error_handler::replace: tag values are arbitrary bytes from the daemon; invalid UTF-8 must
  // not turn a successful command into an exception.
  std::cout << doc.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << '\n';
}

int Fail(const std::string& message) {
  std::string line = message.empty() ? "failed" : message;
  std::replace(line.begin(), line.end(), '\n', ' ');
  std::cout.flush();
  std::cerr << "blocksnapctl: " << line << '\n';
  return kExitFailure;
}

int Fail(const Status& status) {
  return Fail(status.message());
}

}  // namespace blocksnap::ctl
