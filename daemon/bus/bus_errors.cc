#include "bus/bus_errors.h"

#include <cerrno>
#include <cstring>
#include <string>

#include "bus/bus_names.h"
#include "util/utf8.h"

namespace blocksnap {
namespace {

struct Mapping {
  Code code;
  const char* name;
  int err;  // errno equivalent, for sd-bus' error map
};

// Code::kInternal is deliberately last: it is the fallback in both directions.
constexpr Mapping kMappings[] = {
    {Code::kInvalidArgument, kErrorInvalidArgument, EINVAL},
    {Code::kNotFound, kErrorNotFound, ENOENT},
    {Code::kAlreadyExists, kErrorAlreadyExists, EEXIST},
    {Code::kBusy, kErrorBusy, EBUSY},
    {Code::kLocked, kErrorLocked, EPERM},
    {Code::kPermissionDenied, kErrorPermissionDenied, EPERM},
    {Code::kNoSpace, kErrorNoSpace, ENOSPC},
    {Code::kCorruption, kErrorCorruption, EBADMSG},
    {Code::kIOError, kErrorIOError, EIO},
    {Code::kInternal, kErrorFailed, EIO},
};

const sd_bus_error_map kErrorMap[] = {
    SD_BUS_ERROR_MAP(kErrorInvalidArgument, EINVAL),
    SD_BUS_ERROR_MAP(kErrorNotFound, ENOENT),
    SD_BUS_ERROR_MAP(kErrorAlreadyExists, EEXIST),
    SD_BUS_ERROR_MAP(kErrorBusy, EBUSY),
    SD_BUS_ERROR_MAP(kErrorLocked, EPERM),
    SD_BUS_ERROR_MAP(kErrorPermissionDenied, EPERM),
    SD_BUS_ERROR_MAP(kErrorNoSpace, ENOSPC),
    SD_BUS_ERROR_MAP(kErrorCorruption, EBADMSG),
    SD_BUS_ERROR_MAP(kErrorIOError, EIO),
    SD_BUS_ERROR_MAP(kErrorFailed, EIO),
    SD_BUS_ERROR_MAP_END,
};

const Mapping& MappingFor(Code code) {
  for (const Mapping& m : kMappings)
    if (m.code == code) return m;
  return kMappings[std::size(kMappings) - 1];
}

}  // namespace

const char* BusErrorName(Code code) {
  return MappingFor(code).name;
}

int SetBusError(sd_bus_error* ret_error, const Status& status) {
  const Mapping& m = MappingFor(status.ok() ? Code::kInternal : status.code());
  // The message goes out as an 's': it may quote a file name or a file's bytes.
  const std::string text = status.message().empty() ? "failed" : ValidUtf8(status.message());
  sd_bus_error_set(ret_error, m.name, text.c_str());
  return -m.err;
}

Status StatusFromBusError(const sd_bus_error* error, int r) {
  if (error == nullptr || !sd_bus_error_is_set(error)) {
    return Status(Code::kIOError, std::strerror(r < 0 ? -r : EIO));
  }
  const std::string message = error->message ? error->message : "";
  for (const Mapping& m : kMappings)
    if (sd_bus_error_has_name(error, m.name)) return Status(m.code, message);
  // Errors raised by sd-bus itself or by a bus daemon (no such method, wrong signature,
  // policy denial) carry the freedesktop names.
  if (sd_bus_error_has_names(error, SD_BUS_ERROR_INVALID_ARGS, SD_BUS_ERROR_UNKNOWN_METHOD,
                             SD_BUS_ERROR_UNKNOWN_OBJECT, SD_BUS_ERROR_UNKNOWN_INTERFACE,
                             SD_BUS_ERROR_UNKNOWN_PROPERTY))
    return Status(Code::kInvalidArgument, message);
  if (sd_bus_error_has_names(error, SD_BUS_ERROR_ACCESS_DENIED, SD_BUS_ERROR_AUTH_FAILED))
    return Status(Code::kPermissionDenied, message);
  return Status(Code::kInternal, std::string(error->name) + ": " + message);
}

void RegisterBusErrorMap() {
  // sd-bus remembers maps by pointer and ignores a second registration of the same one.
  sd_bus_error_add_map(kErrorMap);
}

}  // namespace blocksnap
