#include "util/parse.h"

#include <charconv>
#include <cstdio>
#include <limits>

namespace blocksnap {
namespace {

bool IsNameChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

}  // namespace

Result<uint64_t> ParseSize(std::string_view text) {
  const std::string original(text);
  if (text.empty()) return InvalidArgument("empty size");
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc::result_out_of_range) return InvalidArgument("size too large: " + original);
  if (ec != std::errc() || end == text.data())
    return InvalidArgument("invalid size '" + original + "': expected a number with K/M/G/T");
  std::string_view suffix(end, text.data() + text.size() - end);
  if (suffix.ends_with("iB"))
    suffix.remove_suffix(2);
  else if (suffix.size() > 1 && suffix.ends_with("B"))
    suffix.remove_suffix(1);
  else if (suffix == "B")
    suffix = {};
  unsigned shift = 0;
  if (suffix.empty())
    shift = 0;
  else if (suffix.size() == 1) {
    switch (suffix[0]) {
      case 'k':
      case 'K':
        shift = 10;
        break;
      case 'm':
      case 'M':
        shift = 20;
        break;
      case 'g':
      case 'G':
        shift = 30;
        break;
      case 't':
      case 'T':
        shift = 40;
        break;
      case 'p':
      case 'P':
        shift = 50;
        break;
      default:
        return InvalidArgument("invalid size suffix in '" + original + "': use K, M, G or T");
    }
  } else {
    return InvalidArgument("invalid size suffix in '" + original + "': use K, M, G or T");
  }
  if (shift && value > (std::numeric_limits<uint64_t>::max() >> shift))
    return InvalidArgument("size too large: " + original);
  return value << shift;
}

std::string FormatSize(uint64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 6) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  if (u == 0)
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  else if (v == static_cast<double>(static_cast<uint64_t>(v)))
    std::snprintf(buf, sizeof buf, "%.0f %s", v, kUnits[u]);
  else
    std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[u]);
  return buf;
}

Status ValidateVolumeName(std::string_view name) {
  if (name.empty() || name.size() > 64)
    return InvalidArgument("invalid volume name '" + std::string(name) +
                           "': must be 1 to 64 characters");
  for (char c : name)
    if (!IsNameChar(c))
      return InvalidArgument("invalid volume name '" + std::string(name) +
                             "': only letters, digits, '.', '_' and '-' are allowed");
  if (name == "." || name == "..")
    return InvalidArgument("invalid volume name '" + std::string(name) + "'");
  // Names and ids are looked up through one "name or id" argument, names first: a name that
  // reads as an id (volume/volume_record.h) would hide that volume from every command.
  if (name.size() == 20 && name.starts_with("vol-") &&
      name.find_first_not_of("0123456789abcdef", 4) == std::string_view::npos)
    return InvalidArgument("invalid volume name '" + std::string(name) +
                           "': names of the form vol-<16 hex digits> are volume ids");
  return Status::Ok();
}

Status ValidateVolumeSize(uint64_t size) {
  if (size == 0) return InvalidArgument("invalid size 0: a volume needs at least 4096 bytes");
  if (size % 4096 != 0)
    return InvalidArgument("invalid size " + std::to_string(size) +
                           ": must be a multiple of 4096 bytes");
  if (size > (uint64_t{1} << 63)) return InvalidArgument("invalid size: larger than 8 EiB");
  return Status::Ok();
}

Status ValidateChunkSize(uint64_t chunk_size) {
  if (chunk_size < 4096 || chunk_size > 4 * 1024 * 1024 || (chunk_size & (chunk_size - 1)) != 0)
    return InvalidArgument("invalid chunk size " + std::to_string(chunk_size) +
                           ": must be a power of two from 4K to 4M");
  return Status::Ok();
}

Status ValidateChunkCount(uint64_t size, uint64_t chunk_size) {
  if (chunk_size == 0) return InvalidArgument("invalid chunk size 0");
  const uint64_t chunks = size / chunk_size + (size % chunk_size != 0);
  if (chunks <= kMaxVolumeChunks) return Status::Ok();
  return InvalidArgument("invalid size " + FormatSize(size) + " with chunk size " +
                         FormatSize(chunk_size) + ": " + std::to_string(chunks) +
                         " chunks, more than the " + std::to_string(kMaxVolumeChunks) +
                         " a volume may have; use a larger chunk size (up to 4M)");
}

Status ValidateTag(std::string_view key, std::string_view value, bool allow_reserved) {
  if (key.empty() || key.size() > 128)
    return InvalidArgument("invalid tag key '" + std::string(key) +
                           "': must be 1 to 128 characters");
  for (char c : key)
    if (!IsNameChar(c) && c != ':' && c != '/')
      return InvalidArgument("invalid tag key '" + std::string(key) +
                             "': only letters, digits and . _ - : / are allowed");
  if (!allow_reserved && key.starts_with(kReservedTagPrefix))
    return InvalidArgument("tag key '" + std::string(key) + "' is reserved for blocksnapd");
  if (value.size() > 256)
    return InvalidArgument("tag value for '" + std::string(key) +
                           "' is longer than 256 characters");
  for (unsigned char c : value)
    if (c < 0x20 || c == 0x7f)
      return InvalidArgument("tag value for '" + std::string(key) +
                             "' contains a control character");
  return Status::Ok();
}

Result<std::pair<std::string, std::string>> ParseTagAssignment(std::string_view text) {
  auto eq = text.find('=');
  if (eq == std::string_view::npos)
    return InvalidArgument("invalid tag '" + std::string(text) + "': expected KEY=VALUE");
  std::string key(text.substr(0, eq)), value(text.substr(eq + 1));
  BS_RETURN_IF_ERROR(ValidateTag(key, value));
  return std::make_pair(std::move(key), std::move(value));
}

}  // namespace blocksnap
