#include "io/volume_catalog.h"

#include "io/volume_export.h"

namespace blocksnap::io {

std::vector<nbd::ExportListing> VolumeCatalog::List() {
  std::vector<nbd::ExportListing> out;
  for (const VolumeRecord& r : volumes_.List()) {
    out.push_back({r.name, "blocksnap volume " + r.IdString()});
  }
  if (snapshots_) {  // [exports]
    for (auto& l : snapshots_->List()) out.push_back(std::move(l));
  }
  return out;
}

std::unique_ptr<nbd::Export> VolumeCatalog::Open(std::string_view name) {
  if (name.empty()) return nullptr;
  // [exports] Volume names never contain '@'; snapshot exports always do.
  if (name.find('@') != std::string_view::npos)
    return snapshots_ ? snapshots_->Open(name, loop_) : nullptr;
  auto vol = volumes_.Find(name);
  if (!vol.ok() || (*vol)->deleted()) return nullptr;
  std::shared_ptr<VolumeWriteHook> hook = hooks_ ? hooks_(**vol) : nullptr;
  return std::make_unique<VolumeExport>(std::move(*vol), loop_, std::move(hook), inline_write_max_,
                                        open_connections_);
}

}  // namespace blocksnap::io
