// Config: where blocksnapd keeps its data and what it listens on.
//
// Precedence: a command-line flag overrides the config file, which overrides the built-in
// defaults. Defaults as root follow the FHS (/etc/blocksnap, /var/lib/blocksnap,
// /run/blocksnap); as another user the XDG base directories.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "util/parse.h"
#include "util/status.h"

namespace blocksnap {

// A volume declared in the config file: created at startup when missing (never resized or
// deleted by the config).
struct DeclaredVolume {
  std::string name;
  uint64_t size = 0;
  uint64_t chunk_size = kDefaultChunkSize;
  Tags tags;
};

struct Config {
  std::string config_file;  // the file these settings came from ("" = none)
  std::string data_dir;
  std::string runtime_dir;
  std::string policy_dir;
  std::string control_path;         // private D-Bus socket
  std::string unix_path;            // NBD unix socket ("" = none)
  std::vector<std::string> listen;  // NBD TCP "HOST:PORT" ("" list = none)
  std::string bus = "auto";         // auto | system | user | none
  std::string log_level = "info";   // trace | debug | info | warn | error
  unsigned io_threads = 0;          // 0 = two per core
  unsigned max_connections = 256;
  unsigned handshake_timeout_s = 10;  // an NBD client must finish its handshake within this
  uint64_t inline_write_max = 1 << 20;
  uint64_t export_cache = 64ull << 20;  // [exports] chunk cache of the snapshot exports
  unsigned export_readers = 2;  // [exports] threads reading their chunks from the store  // NBD
                                // writes up to this size use pwrite on the loop
  uint64_t hydrate_rate = 0;    // [restore] bytes/s a restored volume hydrates at; 0 = unlimited
  std::vector<DeclaredVolume> volumes;
};

// Settings given on the command line; unset ones do not override.
struct ConfigOverrides {
  std::optional<std::string> config_file;
  std::optional<std::string> data_dir, runtime_dir, policy_dir, control_path, unix_path, bus,
      log_level;
  std::optional<std::vector<std::string>> listen;
  std::optional<unsigned> io_threads;
};

// Where the defaults come from: root or not, and the environment ($HOME, $XDG_*).
struct Environment {
  bool root = false;
  std::string home, xdg_config_home, xdg_data_home, xdg_runtime_dir;
  unsigned uid = 0;
  static Environment FromProcess();
};

// The built-in defaults for env (config_file = the default path, which may not exist).
Config DefaultConfig(const Environment& env);

// Applies a YAML config document (`file_name` is used in errors, which read
// "file:line:col: reason") on top of base.
Result<Config> ApplyConfigYaml(Config base, const std::string& file_name,
                               const std::string& yaml_text);

// Where blocksnapd, started by this user without flags, serves its control socket: the
// default config file's `control`, else `<runtime_dir>/control.sock` (runtime_dir from that
// file, else DefaultConfig's: /run/blocksnap as root, $XDG_RUNTIME_DIR/blocksnap or
// /tmp/blocksnap-UID otherwise). blocksnapctl connects there unless told otherwise; an
// unreadable config file counts as none.
std::string DefaultControlPath(const Environment& env);

// The whole resolution: defaults, then the config file (a missing default file is fine, a
// missing --config file is an error), then the overrides. Paths that derive from others
// (unix/control from runtime_dir) follow them unless set explicitly.
Result<Config> ResolveConfig(const Environment& env, const ConfigOverrides& overrides);

}  // namespace blocksnap
