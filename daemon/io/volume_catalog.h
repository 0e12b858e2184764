// VolumeCatalog: the exports of one io loop: every volume, named after it.
#pragma once

#include "io/event_loop.h"
#include "io/snapshot_export.h"  // [exports]
#include "io/write_hook.h"
#include "nbd/export.h"
#include "volume/volume_manager.h"

namespace blocksnap::io {

class VolumeCatalog final : public nbd::ExportCatalog {
 public:
  VolumeCatalog(VolumeManager& volumes, EventLoop& loop, WriteHookProvider hooks,
                uint64_t inline_write_max, const std::atomic<size_t>* open_connections,
                SnapshotExports* snapshots = nullptr)  // [exports]
      : volumes_(volumes),
        loop_(loop),
        hooks_(std::move(hooks)),
        inline_write_max_(inline_write_max),
        open_connections_(open_connections),
        snapshots_(snapshots) {}

  // Every volume by name, described by its id and size; then every completed snapshot as
  // "<volume>@<snapshot id>" (read-only) when snapshot exports are on.
  std::vector<nbd::ExportListing> List() override;
  // A VolumeExport doing its I/O on this loop; nullptr for unknown or deleted volumes.
  std::unique_ptr<nbd::Export> Open(std::string_view name) override;

 private:
  VolumeManager& volumes_;
  EventLoop& loop_;
  WriteHookProvider hooks_;
  uint64_t inline_write_max_;                    // see VolumeExport
  const std::atomic<size_t>* open_connections_;  // see VolumeExport
  SnapshotExports* snapshots_;  // [exports] "<volume>@<snapshot>" exports; nullptr = none
};

}  // namespace blocksnap::io
