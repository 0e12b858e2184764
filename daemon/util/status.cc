#include "util/status.h"

#include <cerrno>
#include <cstring>

namespace blocksnap {

Status FromErrno(int err, const std::string& what) {
  std::string msg = what + ": " + std::strerror(err);
  switch (err) {
    case ENOENT:
      return NotFound(std::move(msg));
    case EEXIST:
      return AlreadyExists(std::move(msg));
    case EACCES:
    case EPERM:
      return PermissionDenied(std::move(msg));
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
      return {Code::kNoSpace, std::move(msg)};
    case EINVAL:
      return InvalidArgument(std::move(msg));
    case EBUSY:
      return Busy(std::move(msg));
    default:
      return IOError(std::move(msg));
  }
}

}  // namespace blocksnap
