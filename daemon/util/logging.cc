#include "util/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>

#include "service/journal_sink.h"

namespace blocksnap {

void SetUpLogging() {
  std::shared_ptr<spdlog::logger> logger;
  if (StderrIsJournal()) {
    // Structured entries (PRIORITY=, VOLUME=, ...: service/journal_sink.h). The journal adds
    // its own timestamp. BLOCKSNAP_JOURNAL_SOCKET redirects them to another native-protocol
    // socket (tests); unset, they go to the system journal.
    const char* socket = std::getenv("BLOCKSNAP_JOURNAL_SOCKET");
    logger = std::make_shared<spdlog::logger>(
        "blocksnapd", std::make_shared<JournalSink>("blocksnapd", socket ? socket : ""));
    logger->set_pattern("%v");
  } else {
    logger = spdlog::stderr_color_mt("blocksnapd");
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %v");
  }
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

Status SetLogLevel(const std::string& level) {
  auto l = spdlog::level::from_str(level);
  if (l == spdlog::level::off && level != "off")
    return InvalidArgument("unknown log level '" + level + "'");
  spdlog::set_level(l);
  return Status::Ok();
}

}  // namespace blocksnap
