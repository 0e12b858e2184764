#include "service/log_fields.h"

namespace blocksnap {
namespace {

std::vector<LogField>& Stack() {
  thread_local std::vector<LogField> stack;
  return stack;
}

}  // namespace

LogFields::LogFields(std::initializer_list<std::pair<std::string_view, std::string_view>> fields) {
  auto& stack = Stack();
  for (const auto& [name, value] : fields) {
    if (!ValidName(name)) continue;
    stack.push_back({std::string(name), std::string(value)});
    ++pushed_;
  }
}

LogFields::~LogFields() {
  auto& stack = Stack();
  stack.resize(stack.size() >= pushed_ ? stack.size() - pushed_ : 0);
}

const std::vector<LogField>& LogFields::Current() {
  return Stack();
}

bool LogFields::ValidName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  if (name[0] == '_' || (name[0] >= '0' && name[0] <= '9')) return false;
  for (char c : name)
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

}  // namespace blocksnap
