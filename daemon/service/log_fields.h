// LogFields: structured journal fields (VOLUME=, SNAPSHOT=, POLICY=, ...) attached to every
// log record a thread makes while the scope lives, so `journalctl VOLUME=db` finds them.
//
//   {
//     LogFields fields{{kLogVolume, record.name}, {kLogSnapshot, snap.id}};
//     spdlog::info("snapshot {} of {} completed", snap.id, record.name);  // carries both
//   }
//
// Scopes nest (an inner field of the same name wins) and are per thread: never keep one
// across a coroutine suspension or hand it to another thread. The journal sink reads them
// (service/journal_sink.h); the stderr logger ignores them. Logging stays synchronous, so the
// sink runs on the thread that logs and sees that thread's fields.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace blocksnap {

inline constexpr std::string_view kLogVolume = "VOLUME";
inline constexpr std::string_view kLogSnapshot = "SNAPSHOT";
inline constexpr std::string_view kLogPolicy = "POLICY";

struct LogField {
  std::string name;   // journal field name: A-Z, 0-9, '_', not starting with '_' or a digit
  std::string value;  // any bytes; newlines allowed
};

class LogFields {
 public:
  // Pushes the fields for this thread; a field with an invalid name is dropped.
  LogFields(std::initializer_list<std::pair<std::string_view, std::string_view>> fields);
  // Pops them again. Scopes must end in reverse order of creation (as C++ scopes do).
  ~LogFields();

  LogFields(const LogFields&) = delete;
  LogFields& operator=(const LogFields&) = delete;

  // The fields of all live scopes on the calling thread, outermost first.
  static const std::vector<LogField>& Current();

  // Whether `name` may be a journal field set by a client.
  static bool ValidName(std::string_view name);

 private:
  size_t pushed_ = 0;
};

}  // namespace blocksnap
