// I/O LIVES HERE AND NOWHERE ELSE IN policy/: reading zoneinfo files.
#include "policy/zoneinfo_files.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <system_error>

namespace blocksnap::policy {

Expected<std::string> ZoneinfoFiles::Read(std::string_view name) const {
  if (auto v = ValidateZoneName(name); !v) return v.error();
  const std::string unknown = "unknown time zone '" + std::string(name) + "'";
  std::filesystem::path path = std::filesystem::path(root_) / std::string(name);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec) || ec) return MakeError(unknown);
  auto size = std::filesystem::file_size(path, ec);
  if (ec || size > (1u << 20)) return MakeError(unknown);
  std::ifstream in(path, std::ios::binary);
  if (!in) return MakeError(unknown);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return MakeError(unknown);
  return bytes;
}

}  // namespace blocksnap::policy
