#include "bus/node_list.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace blocksnap {

int NodeList(const std::vector<std::string>& paths, char*** nodes) {
  char** strv = static_cast<char**>(calloc(paths.size() + 1, sizeof(char*)));
  if (strv == nullptr) return -ENOMEM;
  for (size_t i = 0; i < paths.size(); ++i) {
    strv[i] = strdup(paths[i].c_str());
    if (strv[i] == nullptr) {
      for (size_t j = 0; j < i; ++j) free(strv[j]);
      free(strv);
      return -ENOMEM;
    }
  }
  *nodes = strv;
  return 0;
}

}  // namespace blocksnap
