// JournalSink: an spdlog sink that writes structured entries to the systemd journal.
//
// Each record becomes one journal entry with MESSAGE=, PRIORITY= (mapped from the spdlog
// level), SYSLOG_IDENTIFIER=, TID=, CODE_FILE=/CODE_LINE=/CODE_FUNC= when the call site is
// known, and the fields of the calling thread's LogFields scopes (VOLUME=, SNAPSHOT=,
// POLICY=, ...). If the journal cannot take an entry, the message goes to stderr instead.
#pragma once

#include <spdlog/sinks/base_sink.h>

#include <memory>
#include <mutex>
#include <string>

#include "service/journal_native.h"

namespace blocksnap {

// syslog priority for an spdlog level: trace/debug 7, info 6, warn 4, error 3, critical 2.
int JournalPriority(spdlog::level::level_enum level);

// Whether stderr is connected to the journal: $JOURNAL_STREAM ("dev:inode", set by systemd)
// names stderr's file. A redirected stderr (`blocksnapd 2>log` from a service's shell) is not.
bool StderrIsJournal();

class JournalSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  // socket_path "": the system journal (sd_journal_sendv). Otherwise native-protocol datagrams
  // to that AF_UNIX socket (BLOCKSNAP_JOURNAL_SOCKET, for tests).
  JournalSink(std::string identifier, std::string socket_path);

  // The entry that would be sent for msg on the calling thread (for tests and the sink).
  JournalEntry MakeEntry(const spdlog::details::log_msg& msg) const;

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override {}

 private:
  std::string identifier_;
  std::unique_ptr<JournalSocket> socket_;  // null: the system journal
};

}  // namespace blocksnap
