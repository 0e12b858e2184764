#include "util/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/systemd_sink.h>
#include <spdlog/spdlog.h>

#include <cstdlib>

namespace blocksnap {

void SetUpLogging() {
  std::shared_ptr<spdlog::logger> logger;
  if (std::getenv("JOURNAL_STREAM") != nullptr) {
    // The journal adds its own timestamp and priority; keep the message plain.
    logger = std::make_shared<spdlog::logger>(
        "blocksnapd", std::make_shared<spdlog::sinks::systemd_sink_mt>("blocksnapd"));
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
