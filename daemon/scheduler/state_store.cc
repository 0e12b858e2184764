#include "scheduler/state_store.h"

#include <rocksdb/write_batch.h>

#include <string>

namespace blocksnap::scheduler {

Result<policy::SchedulerState> LoadState(Db& db) {
  policy::SchedulerState state;
  Status bad = Status::Ok();
  Status st =
      db.ScanPrefix(Cf::kMeta, kStateKeyPrefix, [&](std::string_view key, std::string_view value) {
        std::string_view rest = key.substr(kStateKeyPrefix.size());
        size_t slash = rest.find('/');
        policy::TimePoint t;
        if (slash == std::string_view::npos || !policy::ParseTimestamp(std::string(value), &t)) {
          bad = Corruption("scheduler state '" + std::string(key) + "' is malformed: '" +
                           std::string(value) + "'");
          return false;
        }
        state.last_slot[{std::string(rest.substr(0, slash)), std::string(rest.substr(slash + 1))}] =
            t;
        return true;
      });
  BS_RETURN_IF_ERROR(st);
  BS_RETURN_IF_ERROR(bad);
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
