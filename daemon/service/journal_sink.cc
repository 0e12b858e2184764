#include "service/journal_sink.h"

#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "service/log_fields.h"

namespace blocksnap {
namespace {

// Fields the sink sets itself; a LogFields scope cannot override them.
bool Reserved(std::string_view name) {
  static constexpr std::array<std::string_view, 7> kReserved = {
      "MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "TID", "CODE_FILE", "CODE_LINE", "CODE_FUNC"};
  for (auto r : kReserved)
    if (r == name) return true;
  return false;
}

}  // namespace

int JournalPriority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return 7;  // LOG_DEBUG
    case spdlog::level::info:
      return 6;  // LOG_INFO
    case spdlog::level::warn:
      return 4;  // LOG_WARNING
    case spdlog::level::err:
      return 3;  // LOG_ERR
    case spdlog::level::critical:
      return 2;  // LOG_CRIT
    default:
      return 6;
  }
}

bool StderrIsJournal() {
  const char* e = std::getenv("JOURNAL_STREAM");
  if (e == nullptr) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(e, "%llu:%llu", &dev, &ino) != 2) return false;
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) != 0) return false;
  return st.st_dev == dev && st.st_ino == ino;
}

JournalSink::JournalSink(std::string identifier, std::string socket_path)
    : identifier_(std::move(identifier)) {
  if (!socket_path.empty()) socket_ = std::make_unique<JournalSocket>(std::move(socket_path));
}

JournalEntry JournalSink::MakeEntry(const spdlog::details::log_msg& msg) const {
  JournalEntry entry;
  entry.emplace_back("MESSAGE", std::string(msg.payload.data(), msg.payload.size()));
  entry.emplace_back("PRIORITY", std::to_string(JournalPriority(msg.level)));
  entry.emplace_back("SYSLOG_IDENTIFIER", identifier_);
  entry.emplace_back("TID", std::to_string(msg.thread_id));
  if (!msg.source.empty()) {
    entry.emplace_back("CODE_FILE", msg.source.filename);
    entry.emplace_back("CODE_LINE", std::to_string(msg.source.line));
    if (msg.source.funcname != nullptr) entry.emplace_back("CODE_FUNC", msg.source.funcname);
  }
  // The thread's scoped fields, innermost first so an inner scope's value wins.
  const auto& scoped = LogFields::Current();
  const size_t fixed = entry.size();
  for (auto it = scoped.rbegin(); it != scoped.rend(); ++it) {
    if (Reserved(it->name)) continue;
    bool seen = false;
    for (size_t i = fixed; i < entry.size() && !seen; ++i) seen = entry[i].first == it->name;
    if (!seen) entry.emplace_back(it->name, it->value);
  }
  return entry;
}

void JournalSink::sink_it_(const spdlog::details::log_msg& msg) {
  JournalEntry entry = MakeEntry(msg);
  int r = 0;
  if (socket_) {
    r = socket_->Send(entry);
  } else {
    std::vector<std::string> lines;
    std::vector<iovec> iov;
    lines.reserve(entry.size());
    iov.reserve(entry.size());
    for (const auto& [name, value] : entry) {
      lines.push_back(name + "=" + value);
      iov.push_back({lines.back().data(), lines.back().size()});
    }
    r = sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
  }
  if (r < 0) {
    // Never lose a record: stderr is the journal's stream (or a terminal) anyway.
    std::fprintf(stderr, "<%d>%.*s\n", JournalPriority(msg.level),
                 static_cast<int>(msg.payload.size()), msg.payload.data());
  }
}

}  // namespace blocksnap
