#include "bus/credentials.h"

#include <grp.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include "bus/bus_ptr.h"

namespace blocksnap {
namespace {

// The gid of kControlGroup, or nullopt when the group does not exist on this host. Looked
// up per call (mutations are rare) so a group created after the daemon started counts.
std::optional<gid_t> ControlGroupId() {
  std::vector<char> buf(16384);
  group grp{};
  group* found = nullptr;
  if (getgrnam_r(kControlGroup, &grp, buf.data(), buf.size(), &found) != 0 || found == nullptr)
    return std::nullopt;
  return found->gr_gid;
}

bool InGroup(sd_bus_creds* creds, gid_t wanted) {
  gid_t gid = 0;
  if (sd_bus_creds_get_egid(creds, &gid) >= 0 && gid == wanted) return true;
  if (sd_bus_creds_get_gid(creds, &gid) >= 0 && gid == wanted) return true;
  const gid_t* groups = nullptr;
  int n = sd_bus_creds_get_supplementary_gids(creds, &groups);
  for (int i = 0; i < n; ++i)
    if (groups[i] == wanted) return true;
  return false;
}

}  // namespace

Status CheckMayMutate(sd_bus_message* call, const char* action) {
  sd_bus_creds* raw = nullptr;
  // AUGMENT lets sd-bus fill what the transport did not send (e.g. groups) from /proc.
  const uint64_t mask = SD_BUS_CREDS_UID | SD_BUS_CREDS_EUID | SD_BUS_CREDS_GID |
                        SD_BUS_CREDS_EGID | SD_BUS_CREDS_SUPPLEMENTARY_GIDS | SD_BUS_CREDS_AUGMENT;
  int r = sd_bus_query_sender_creds(call, mask, &raw);
  CredsPtr creds(raw);
  if (r < 0) return FromErrno(-r, "reading the caller's credentials");

  uid_t uid = 0;
  r = sd_bus_creds_get_euid(creds.get(), &uid);
  if (r < 0) r = sd_bus_creds_get_uid(creds.get(), &uid);
  if (r < 0) return FromErrno(-r, "reading the caller's user id");

  if (uid == 0 || uid == geteuid()) return Status::Ok();
  if (auto gid = ControlGroupId(); gid && InGroup(creds.get(), *gid)) return Status::Ok();
  return PermissionDenied(std::string(action) + ": permission denied (user " + std::to_string(uid) +
                          " is neither root nor in group '" + kControlGroup + "')");
}

}  // namespace blocksnap
