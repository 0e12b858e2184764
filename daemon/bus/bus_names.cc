#include "bus/bus_names.h"

#include <algorithm>

#include "volume/volume_record.h"

namespace blocksnap {

std::string VolumeObjectPath(std::string_view volume_id) {
  std::string element(volume_id);
  std::replace(element.begin(), element.end(), '-', '_');
  return std::string(kVolumePathPrefix) + "/" + element;
}

std::optional<std::string> VolumeIdFromObjectPath(std::string_view path) {
  const std::string_view prefix = kVolumePathPrefix;
  if (!path.starts_with(prefix) || path.size() <= prefix.size() + 1 || path[prefix.size()] != '/')
    return std::nullopt;
  std::string id(path.substr(prefix.size() + 1));
  for (char& c : id) {
    const bool ok =
        (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return std::nullopt;  // includes '/': no deeper objects exist
    if (c == '_') c = '-';
  }
  // Only an id: the volume lookup behind it also takes names, which are not object paths.
  if (!ParseVolumeId(id).ok()) return std::nullopt;
  return id;
}

}  // namespace blocksnap
