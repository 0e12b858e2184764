// The public names of the control-plane D-Bus API (docs/DBUS.md), shared by blocksnapd and
// blocksnapctl so the two cannot drift apart.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace blocksnap {

inline constexpr const char* kBusName = "org.blocksnap1";
inline constexpr const char* kManagerPath = "/org/blocksnap1";
inline constexpr const char* kManagerInterface = "org.blocksnap1.Manager";
inline constexpr const char* kVolumeInterface = "org.blocksnap1.Volume";
// Parent of the per-volume objects: kVolumePathPrefix + "/" + escaped id.
inline constexpr const char* kVolumePathPrefix = "/org/blocksnap1/volume";

// Error names sent to clients, one per blocksnap::Code (bus_errors.cc maps them).
inline constexpr const char* kErrorNotFound = "org.blocksnap1.Error.NotFound";
inline constexpr const char* kErrorInvalidArgument = "org.blocksnap1.Error.InvalidArgument";
inline constexpr const char* kErrorAlreadyExists = "org.blocksnap1.Error.AlreadyExists";
inline constexpr const char* kErrorBusy = "org.blocksnap1.Error.Busy";
inline constexpr const char* kErrorLocked = "org.blocksnap1.Error.Locked";
inline constexpr const char* kErrorPermissionDenied = "org.blocksnap1.Error.PermissionDenied";
inline constexpr const char* kErrorNoSpace = "org.blocksnap1.Error.NoSpace";
inline constexpr const char* kErrorCorruption = "org.blocksnap1.Error.Corruption";
inline constexpr const char* kErrorIOError = "org.blocksnap1.Error.IOError";
inline constexpr const char* kErrorFailed = "org.blocksnap1.Error.Failed";

// "vol-00000000000000a1" -> "/org/blocksnap1/volume/vol_00000000000000a1". Object path
// elements allow only [A-Za-z0-9_], so '-' becomes '_' (ids never contain '_').
std::string VolumeObjectPath(std::string_view volume_id);

// The inverse: the volume id named by an object path below kVolumePathPrefix, or nullopt
// when the path is not of that form.
std::optional<std::string> VolumeIdFromObjectPath(std::string_view path);

}  // namespace blocksnap
