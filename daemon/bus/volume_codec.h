// Marshalling of volumes into D-Bus messages. The dictionary form (a{sv}) is what
// Manager.ListVolumes (aa{sv}) and Manager.GetVolume (a{sv}) return; its keys are the
// Volume object's property names (docs/DBUS.md), so a client sees one vocabulary.
#pragma once

#include <systemd/sd-bus.h>

#include <string>
#include <vector>

#include "bus/basic_codec.h"
#include "bus/bus_context.h"
#include "volume/volume_record.h"

namespace blocksnap {

// Signatures of the composite values.
inline constexpr const char* kClientsSignature = "a(sss)";  // address, export, connected
inline constexpr const char* kVolumeDictSignature = "a{sv}";

// Each returns sd-bus' result: negative errno on failure.
int AppendClients(sd_bus_message* m, const std::vector<ClientInfo>& clients);
// Keys: Id s, Name s, Path o, Size t, ChunkSize t, Tags a{ss}, State s, Created s (RFC 3339),
// Uri s, Clients a(sss); [restore] OriginSnapshot s, HydratedBytes t, HydrateTotalBytes t.
int AppendVolumeDict(sd_bus_message* m, const BusContext& ctx, const VolumeRecord& r);

}  // namespace blocksnap
