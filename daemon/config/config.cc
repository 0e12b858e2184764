#include "config/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdlib>

#include "util/unique_fd.h"

namespace blocksnap {
namespace {

// "none" disables a socket in the file; "" means "derive from runtime_dir" until Finalize.
constexpr const char* kDisabled = "none";

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

class YamlErrors {
 public:
  explicit YamlErrors(std::string file) : file_(std::move(file)) {}
  Status At(const YAML::Node& node, const std::string& reason) const {
    const YAML::Mark m = node.Mark();
    return InvalidArgument(file_ + ":" + std::to_string(m.line + 1) + ":" +
                           std::to_string(m.column + 1) + ": " + reason);
  }

 private:
  std::string file_;
};

Result<std::string> Scalar(const YamlErrors& err, const YAML::Node& n, const std::string& key) {
  if (!n.IsScalar()) return err.At(n, "'" + key + "' must be a string");
  return n.Scalar();
}

Result<unsigned> Unsigned(const YamlErrors& err, const YAML::Node& n, const std::string& key,
                          unsigned max) {
  if (!n.IsScalar()) return err.At(n, "'" + key + "' must be a number");
  const std::string& s = n.Scalar();
  char* end = nullptr;
  errno = 0;
  unsigned long v = std::strtoul(s.c_str(), &end, 10);
  if (s.empty() || *end || errno || v > max || s[0] == '-')
    return err.At(n, "'" + key + "' must be a whole number from 0 to " + std::to_string(max));
  return static_cast<unsigned>(v);
}

Result<DeclaredVolume> ParseVolume(const YamlErrors& err, const YAML::Node& n) {
  if (!n.IsMap()) return err.At(n, "a volume must be a mapping with name and size");
  DeclaredVolume v;
  bool has_name = false, has_size = false;
  for (const auto& kv : n) {
    const std::string key = kv.first.Scalar();
    const YAML::Node& val = kv.second;
    if (key == "name") {
      BS_ASSIGN_OR_RETURN(v.name, Scalar(err, val, key));
      if (Status st = ValidateVolumeName(v.name); !st.ok()) return err.At(val, st.message());
      has_name = true;
    } else if (key == "size" || key == "chunk_size") {
      BS_ASSIGN_OR_RETURN(std::string text, Scalar(err, val, key));
      auto size = ParseSize(text);
      if (!size.ok()) return err.At(val, size.status().message());
      Status st = key == "size" ? ValidateVolumeSize(*size) : ValidateChunkSize(*size);
      if (!st.ok()) return err.At(val, st.message());
      (key == "size" ? v.size : v.chunk_size) = *size;
      has_size |= key == "size";
    } else if (key == "tags") {
      if (!val.IsMap()) return err.At(val, "'tags' must be a mapping of key: value");
      for (const auto& t : val) {
        if (!t.second.IsScalar()) return err.At(t.second, "a tag value must be a string");
        if (Status st = ValidateTag(t.first.Scalar(), t.second.Scalar()); !st.ok())
          return err.At(t.first, st.message());
        v.tags[t.first.Scalar()] = t.second.Scalar();
      }
    } else {
      return err.At(kv.first, "unknown key '" + key + "' in volume");
    }
  }
  if (!has_name) return err.At(n, "a volume needs a 'name'");
  if (!has_size) return err.At(n, "volume '" + v.name + "' needs a 'size'");
  return v;
}

Status ApplyKey(Config& c, const YamlErrors& err, const std::string& key, const YAML::Node& val) {
  auto set_string = [&](std::string& field) -> Status {
    BS_ASSIGN_OR_RETURN(field, Scalar(err, val, key));
    if (field.empty()) return err.At(val, "'" + key + "' must not be empty");
    return Status::Ok();
  };
  if (key == "data_dir") return set_string(c.data_dir);
  if (key == "runtime_dir") return set_string(c.runtime_dir);
  if (key == "policy_dir") return set_string(c.policy_dir);
  if (key == "control") return set_string(c.control_path);
  if (key == "unix") {
    if (val.IsNull())
      c.unix_path = kDisabled;
    else
      return set_string(c.unix_path);
    return Status::Ok();
  }
  if (key == "listen") {
    c.listen.clear();
    if (val.IsNull()) return Status::Ok();
    if (val.IsScalar()) {
      c.listen.push_back(val.Scalar());
      return Status::Ok();
    }
    if (!val.IsSequence()) return err.At(val, "'listen' must be HOST:PORT or a list of them");
    for (const auto& item : val) {
      BS_ASSIGN_OR_RETURN(std::string addr, Scalar(err, item, "listen"));
      c.listen.push_back(addr);
    }
    return Status::Ok();
  }
  if (key == "bus") {
    BS_RETURN_IF_ERROR(set_string(c.bus));
    if (c.bus != "auto" && c.bus != "system" && c.bus != "user" && c.bus != "none")
      return err.At(val, "'bus' must be one of auto, system, user, none");
    return Status::Ok();
  }
  if (key == "log_level") {
    BS_RETURN_IF_ERROR(set_string(c.log_level));
    static const char* kLevels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
    for (const char* l : kLevels)
      if (c.log_level == l) return Status::Ok();
    return err.At(val, "'log_level' must be one of trace, debug, info, warn, error");
  }
  if (key == "io_threads") {
    BS_ASSIGN_OR_RETURN(c.io_threads, Unsigned(err, val, key, 256));
    return Status::Ok();
  }
  if (key == "max_connections") {
    BS_ASSIGN_OR_RETURN(c.max_connections, Unsigned(err, val, key, 65536));
    if (c.max_connections == 0) return err.At(val, "'max_connections' must be at least 1");
    return Status::Ok();
  }
  if (key == "handshake_timeout") {  // "10s", "2m" or a number of seconds
    BS_ASSIGN_OR_RETURN(std::string text, Scalar(err, val, key));
    unsigned scale = 1;
    if (text.ends_with("s")) {
      text.pop_back();
    } else if (text.ends_with("m")) {
      text.pop_back();
      scale = 60;
    }
    char* end = nullptr;
    errno = 0;
    unsigned long v = std::strtoul(text.c_str(), &end, 10);
    if (text.empty() || *end || errno || text[0] == '-' || v == 0 || v * scale > 3600)
      return err.At(val, "'handshake_timeout' must be a time from 1s to 60m, such as 10s");
    c.handshake_timeout_s = static_cast<unsigned>(v * scale);
    return Status::Ok();
  }
  if (key == "export_cache") {  // [exports] "64M"; at least one 4 MiB chunk
    BS_ASSIGN_OR_RETURN(std::string text, Scalar(err, val, key));
    auto size = ParseSize(text);
    if (!size.ok() || *size < (4u << 20) || *size > (64ull << 30))
      return err.At(val, "'export_cache' must be a size from 4M to 64G, such as 256M");
    c.export_cache = *size;
    return Status::Ok();
  }
  if (key == "export_readers") {
    BS_ASSIGN_OR_RETURN(c.export_readers, Unsigned(err, val, key, 64));
    if (c.export_readers == 0) return err.At(val, "'export_readers' must be at least 1");
    return Status::Ok();
  }
  if (key == "inline_write_max") {  // "1M"; 0 = every write through io_uring
    BS_ASSIGN_OR_RETURN(std::string text, Scalar(err, val, key));
    auto size = ParseSize(text);
    if (!size.ok() || *size > (32u << 20))
      return err.At(val, "'inline_write_max' must be a size from 0 to 32M, such as 1M");
    c.inline_write_max = *size;
    return Status::Ok();
  }
  if (key == "hydrate_rate") {  // [restore] "64M" (per second); 0 or "unlimited" = no limit
    BS_ASSIGN_OR_RETURN(std::string text, Scalar(err, val, key));
    if (text == "unlimited" || text == "0") {
      c.hydrate_rate = 0;
      return Status::Ok();
    }
    auto rate = ParseSize(text);
    if (!rate.ok()) return err.At(val, "'hydrate_rate' must be a size per second such as 64M");
    c.hydrate_rate = *rate;
    return Status::Ok();
  }
  if (key == "volumes") {
    if (!val.IsSequence()) return err.At(val, "'volumes' must be a list");
    c.volumes.clear();
    for (const auto& item : val) {
      BS_ASSIGN_OR_RETURN(DeclaredVolume v, ParseVolume(err, item));
      c.volumes.push_back(std::move(v));
    }
    return Status::Ok();
  }
  return InvalidArgument("");  // marker: unknown key, reported by the caller with its mark
}

std::string ControlPathIn(const std::string& runtime_dir) {
  return runtime_dir + "/control.sock";
}

}  // namespace

Environment Environment::FromProcess() {
  Environment e;
  e.uid = ::geteuid();
  e.root = e.uid == 0;
  e.home = Env("HOME");
  e.xdg_config_home = Env("XDG_CONFIG_HOME");
  e.xdg_data_home = Env("XDG_DATA_HOME");
  e.xdg_runtime_dir = Env("XDG_RUNTIME_DIR");
  return e;
}

Config DefaultConfig(const Environment& env) {
  Config c;
  std::string config_dir;
  if (env.root) {
    config_dir = "/etc/blocksnap";
    c.data_dir = "/var/lib/blocksnap";
    c.runtime_dir = "/run/blocksnap";
  } else {
    config_dir =
        (env.xdg_config_home.empty() ? env.home + "/.config" : env.xdg_config_home) + "/blocksnap";
    c.data_dir =
        (env.xdg_data_home.empty() ? env.home + "/.local/share" : env.xdg_data_home) + "/blocksnap";
    c.runtime_dir = env.xdg_runtime_dir.empty() ? "/tmp/blocksnap-" + std::to_string(env.uid)
                                                : env.xdg_runtime_dir + "/blocksnap";
  }
  c.config_file = config_dir + "/blocksnapd.yaml";
  c.policy_dir = config_dir + "/policies.d";
  c.listen = {"127.0.0.1:10809"};
  return c;
}

Result<Config> ApplyConfigYaml(Config base, const std::string& file_name,
                               const std::string& yaml_text) {
  YamlErrors err(file_name);
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(file_name + ":" + std::to_string(e.mark.line + 1) + ":" +
                           std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  if (root.IsNull()) return base;  // an empty file changes nothing
  if (!root.IsMap()) return err.At(root, "the config file must be a mapping of settings");
  try {
    for (const auto& kv : root) {
      if (!kv.first.IsScalar()) return err.At(kv.first, "setting names must be strings");
      const std::string key = kv.first.Scalar();
      Status st = ApplyKey(base, err, key, kv.second);
      if (!st.ok() && st.message().empty())
        return err.At(kv.first, "unknown setting '" + key + "'");
      BS_RETURN_IF_ERROR(st);
    }
  } catch (const YAML::Exception& e) {
    return InvalidArgument(file_name + ":" + std::to_string(e.mark.line + 1) + ":" +
                           std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  base.config_file = file_name;
  return base;
}

namespace {

Result<std::string> ReadConfigFile(const std::string& file) {
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return FromErrno(errno, "reading config file " + file);
  std::string text;
  char buf[16384];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return FromErrno(errno, "reading config file " + file);
    if (n == 0) return text;
    text.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace

std::string DefaultControlPath(const Environment& env) {
  Result<Config> c = ResolveConfig(env, {});
  return c.ok() ? c->control_path : ControlPathIn(DefaultConfig(env).runtime_dir);
}

Result<Config> ResolveConfig(const Environment& env, const ConfigOverrides& o) {
  Config c = DefaultConfig(env);
  std::string file = o.config_file.value_or(c.config_file);
  Result<std::string> text = ReadConfigFile(file);
  if (text.ok()) {
    BS_ASSIGN_OR_RETURN(c, ApplyConfigYaml(std::move(c), file, *text));
  } else if (struct stat st{}; o.config_file || ::lstat(file.c_str(), &st) == 0) {
    // A default file that is not there means "built-in defaults". One that is there but
    // cannot be read (EACCES, ELOOP, EIO) would otherwise start the daemon on another data
    // dir, without its declared volumes, as if they were gone. (A path that cannot even be
    // searched, such as another user's $HOME after su, still counts as not there.)
    return text.status();
  } else {
    c.config_file.clear();
  }
  if (o.data_dir) c.data_dir = *o.data_dir;
  if (o.runtime_dir) c.runtime_dir = *o.runtime_dir;
  if (o.policy_dir) c.policy_dir = *o.policy_dir;
  if (o.control_path) c.control_path = *o.control_path;
  if (o.unix_path) c.unix_path = *o.unix_path;
  if (o.bus) c.bus = *o.bus;
  if (o.log_level) c.log_level = *o.log_level;
  if (o.listen) c.listen = *o.listen;
  if (o.io_threads) c.io_threads = *o.io_threads;
  // Derived paths follow the final runtime_dir unless set explicitly.
  if (c.control_path.empty()) c.control_path = ControlPathIn(c.runtime_dir);
  if (c.unix_path.empty()) c.unix_path = c.runtime_dir + "/nbd.sock";
  if (c.unix_path == kDisabled) c.unix_path.clear();
  if (c.listen.size() == 1 && (c.listen[0].empty() || c.listen[0] == kDisabled)) c.listen.clear();
  return c;
}

}  // namespace blocksnap
