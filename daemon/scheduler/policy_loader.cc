#include "scheduler/policy_loader.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "policy/zoneinfo_files.h"

namespace blocksnap::scheduler {
namespace {

policy::Diagnostic FileError(const std::string& file, std::string reason) {
  return {{file, 1, 1}, std::move(reason)};
}

}  // namespace

std::vector<std::string> ListPolicyFiles(const std::string& dir, std::vector<std::string>* errors) {
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  std::error_code ec;
  const bool exists = fs::exists(dir, ec);  // a missing directory is no error; EACCES is
  if (ec) {
    errors->push_back("cannot reach the policy directory: " + ec.message());
    return files;
  }
  if (!exists) return files;
  fs::directory_iterator it(dir, ec);
  if (ec) {
    errors->push_back("cannot list the policy directory: " + ec.message());
    return files;
  }
  // Not a range-for: its increment throws filesystem_error when readdir fails (EIO, say),
  // and a reload runs in a noexcept signal handler.
  const fs::directory_iterator end;
  while (it != end) {
    if (it->path().extension() == ".yaml" && it->is_regular_file(ec)) files.push_back(it->path());
    if (it.increment(ec); ec) {
      errors->push_back("cannot list the policy directory: " + ec.message());
      return {};
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

policy::PolicySet LoadPolicyFiles(const std::vector<std::string>& files) {
  std::vector<policy::PolicyFileText> texts;
  std::vector<policy::Diagnostic> read_errors;
  for (const std::string& file : files) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      read_errors.push_back(FileError(file, std::string("cannot read: ") + std::strerror(errno)));
      continue;
    }
    // Reads at most one byte past the limit (pipes and /dev/stdin have no size to check).
    std::string body(policy::kMaxPolicyFileBytes + 1, '\0');
    in.read(body.data(), static_cast<std::streamsize>(body.size()));
    if (in.bad()) {
      read_errors.push_back(FileError(file, "cannot read"));
      continue;
    }
    body.resize(static_cast<size_t>(in.gcount()));
    if (body.size() > policy::kMaxPolicyFileBytes) {
      read_errors.push_back(FileError(file, "file larger than 1 MiB"));
      continue;
    }
    texts.push_back({file, std::move(body)});
  }
  policy::ZoneinfoFiles zones;
  policy::PolicySet set = policy::ParsePolicyFiles(std::move(texts), zones);
  set.errors.insert(set.errors.begin(), read_errors.begin(), read_errors.end());
  return set;
}

PolicyDirLoad LoadPolicyDir(const std::string& dir) {
  std::vector<std::string> list_errors;
  std::vector<std::string> files = ListPolicyFiles(dir, &list_errors);
  PolicyDirLoad load{LoadPolicyFiles(files), list_errors.empty()};
  for (const std::string& e : list_errors) {
    load.set.errors.insert(load.set.errors.begin(), FileError(dir, e));
  }
  return load;
}

}  // namespace blocksnap::scheduler
