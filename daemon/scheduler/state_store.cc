#include "scheduler/state_store.h"

#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <string>
#include <vector>

namespace blocksnap::scheduler {

Result<policy::SchedulerState> LoadState(Db& db, std::vector<std::string>* dropped) {
  policy::SchedulerState state;
  Status st =
      db.ScanPrefix(Cf::kMeta, kStateKeyPrefix, [&](std::string_view key, std::string_view value) {
        std::string_view rest = key.substr(kStateKeyPrefix.size());
        size_t slash = rest.find('/');
        policy::TimePoint t;
        if (slash == std::string_view::npos || !policy::ParseTimestamp(std::string(value), &t)) {
          // One bad entry must not stop the daemon: without it, its schedule starts now.
          std::string why = "scheduler state '" + std::string(key) + "' is malformed: '" +
                            std::string(value) + "'; dropped, its schedule starts now";
          spdlog::warn("{}", why);
          if (dropped) dropped->push_back(std::move(why));
          return true;
        }
        state.last_slot[{std::string(rest.substr(0, slash)), std::string(rest.substr(slash + 1))}] =
            t;
        return true;
      });
  BS_RETURN_IF_ERROR(st);
  return state;
}

Status SaveState(Db& db, const policy::SchedulerState& state) {
  rocksdb::WriteBatch batch;
  for (const auto& [key, slot] : state.last_slot) {
    std::string k = std::string(kStateKeyPrefix) + key.policy + "/" + key.schedule;
    auto s = batch.Put(db.cf(Cf::kMeta), k, policy::FormatTimestamp(slot));
    if (!s.ok()) return FromRocks(s, "staging scheduler state");
  }
  return db.Write(batch);
}

}  // namespace blocksnap::scheduler
