#include "config/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace blocksnap {
namespace {

Environment RootEnv() {
  Environment e;
  e.root = true;
  return e;
}

Environment UserEnv() {
  Environment e;
  e.uid = 1000;
  e.home = "/home/ann";
  e.xdg_runtime_dir = "/run/user/1000";
  return e;
}

TEST(Config, RootDefaults) {
  Config c = DefaultConfig(RootEnv());
  EXPECT_EQ(c.config_file, "/etc/blocksnap/blocksnapd.yaml");
  EXPECT_EQ(c.data_dir, "/var/lib/blocksnap");
  EXPECT_EQ(c.runtime_dir, "/run/blocksnap");
  EXPECT_EQ(c.policy_dir, "/etc/blocksnap/policies.d");
  EXPECT_EQ(c.listen, std::vector<std::string>{"127.0.0.1:10809"});
}

TEST(Config, UserDefaultsFollowXdg) {
  Config c = DefaultConfig(UserEnv());
  EXPECT_EQ(c.config_file, "/home/ann/.config/blocksnap/blocksnapd.yaml");
  EXPECT_EQ(c.data_dir, "/home/ann/.local/share/blocksnap");
  EXPECT_EQ(c.runtime_dir, "/run/user/1000/blocksnap");
  Environment e = UserEnv();
  e.xdg_data_home = "/data";
  e.xdg_config_home = "/cfg";
  c = DefaultConfig(e);
  EXPECT_EQ(c.data_dir, "/data/blocksnap");
  EXPECT_EQ(c.policy_dir, "/cfg/blocksnap/policies.d");
}

TEST(Config, FileOverridesDefaults) {
  auto c = ApplyConfigYaml(
      DefaultConfig(RootEnv()), "b.yaml",
      "data_dir: /srv/bs\nlisten: [\"[::1]:10900\", \"0.0.0.0:10809\"]\n"
      "log_level: debug\nio_threads: 3\ninline_write_max: 64K\nhandshake_timeout: 2m\n"
      "export_cache: 256M\nexport_readers: 4\n");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->data_dir, "/srv/bs");
  EXPECT_EQ(c->listen, (std::vector<std::string>{"[::1]:10900", "0.0.0.0:10809"}));
  EXPECT_EQ(c->log_level, "debug");
  EXPECT_EQ(c->io_threads, 3u);
  EXPECT_EQ(c->inline_write_max, 65536u);
  EXPECT_EQ(c->handshake_timeout_s, 120u);
  EXPECT_EQ(c->export_cache, 256ull << 20);
  EXPECT_EQ(c->export_readers, 4u);
  EXPECT_EQ(c->runtime_dir, "/run/blocksnap");  // untouched keys keep their default
}

TEST(Config, DeclaredVolumes) {
  auto c = ApplyConfigYaml(DefaultConfig(RootEnv()), "v.yaml",
                           "volumes:\n  - name: demo\n    size: 1G\n    tags: {env: demo}\n");
  ASSERT_TRUE(c.ok()) << c.status().message();
  ASSERT_EQ(c->volumes.size(), 1u);
  EXPECT_EQ(c->volumes[0].name, "demo");
  EXPECT_EQ(c->volumes[0].size, 1ull << 30);
  EXPECT_EQ(c->volumes[0].chunk_size, 65536u);
  EXPECT_EQ(c->volumes[0].tags.at("env"), "demo");
}

TEST(Config, ErrorsNameFileLineColumn) {
  auto unknown =
      ApplyConfigYaml(Config{}, "/etc/blocksnap/blocksnapd.yaml", "data_dir: /x\n  \nlisen: 1\n");
  EXPECT_EQ(unknown.status().message(),
            "/etc/blocksnap/blocksnapd.yaml:3:1: unknown setting 'lisen'");
  auto bad_type = ApplyConfigYaml(Config{}, "c.yaml", "io_threads: many\n");
  EXPECT_EQ(bad_type.status().message(),
            "c.yaml:1:13: 'io_threads' must be a whole number from 0 to 256");
  auto bad_timeout = ApplyConfigYaml(Config{}, "c.yaml", "handshake_timeout: 0s\n");
  EXPECT_EQ(bad_timeout.status().message(),
            "c.yaml:1:20: 'handshake_timeout' must be a time from 1s to 60m, such as 10s");
  auto bad_cache = ApplyConfigYaml(Config{}, "c.yaml", "export_cache: 1M\n");
  EXPECT_EQ(bad_cache.status().message(),
            "c.yaml:1:15: 'export_cache' must be a size from 4M to 64G, such as 256M");
  auto bad_readers = ApplyConfigYaml(Config{}, "c.yaml", "export_readers: 0\n");
  EXPECT_EQ(bad_readers.status().message(), "c.yaml:1:17: 'export_readers' must be at least 1");
  auto bad_inline = ApplyConfigYaml(Config{}, "c.yaml", "inline_write_max: 64M\n");
  EXPECT_EQ(bad_inline.status().message(),
            "c.yaml:1:19: 'inline_write_max' must be a size from 0 to 32M, such as 1M");
  auto bad_size = ApplyConfigYaml(Config{}, "c.yaml", "volumes:\n  - name: demo\n    size: 1000\n");
  EXPECT_EQ(bad_size.status().message(),
            "c.yaml:3:11: invalid size 1000: must be a multiple of 4096 bytes");
  auto syntax = ApplyConfigYaml(Config{}, "c.yaml", "listen: [a, b\n");
  EXPECT_FALSE(syntax.ok());
  EXPECT_EQ(syntax.status().message().rfind("c.yaml:", 0), 0u) << syntax.status().message();
  auto not_map = ApplyConfigYaml(Config{}, "c.yaml", "- a\n- b\n");
  EXPECT_EQ(not_map.status().message(),
            "c.yaml:1:1: the config file must be a mapping of settings");
}

class ConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("bs-config-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& text) {
    std::string path = (dir_ / "blocksnapd.yaml").string();
    std::ofstream(path) << text;
    return path;
  }
  std::filesystem::path dir_;
};

TEST_F(ConfigFileTest, FlagOverridesFileOverridesDefault) {
  ConfigOverrides o;
  o.config_file = Write("data_dir: /from-file\nruntime_dir: /rt-file\nlog_level: warn\n");
  o.data_dir = "/from-flag";
  auto c = ResolveConfig(RootEnv(), o);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->data_dir, "/from-flag");                   // flag beats file
  EXPECT_EQ(c->log_level, "warn");                        // file beats default
  EXPECT_EQ(c->policy_dir, "/etc/blocksnap/policies.d");  // default
  // Derived sockets follow the file's runtime_dir.
  EXPECT_EQ(c->control_path, "/rt-file/control.sock");
  EXPECT_EQ(c->unix_path, "/rt-file/nbd.sock");
}

TEST_F(ConfigFileTest, MissingExplicitFileIsAnError) {
  ConfigOverrides o;
  o.config_file = (dir_ / "nope.yaml").string();
  auto c = ResolveConfig(RootEnv(), o);
  EXPECT_EQ(c.status().code(), Code::kNotFound);
}

// The default file is optional, but one that exists and cannot be read is an error: the
// built-in defaults would start the daemon on another data dir, without its volumes.
TEST_F(ConfigFileTest, UnreadableDefaultFileIsAnError) {
  Environment env = RootEnv();
  env.root = false;
  env.uid = 1000;
  env.home = dir_.string();
  env.xdg_config_home = dir_.string();
  auto c = ResolveConfig(env, {});
  ASSERT_TRUE(c.ok()) << c.status().message();  // missing: the defaults
  EXPECT_EQ(c->config_file, "");
  const std::filesystem::path file = dir_ / "blocksnap" / "blocksnapd.yaml";
  std::filesystem::create_directories(file.parent_path());
  std::filesystem::create_symlink(file, file);  // ELOOP, where root would read through modes
  c = ResolveConfig(env, {});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            "reading config file " + file.string() + ": Too many levels of symbolic links");
}

TEST_F(ConfigFileTest, SocketsCanBeDisabled) {
  ConfigOverrides o;
  o.config_file = Write("unix: null\nlisten: []\n");
  auto c = ResolveConfig(RootEnv(), o);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_TRUE(c->unix_path.empty());
  EXPECT_TRUE(c->listen.empty());
  o.unix_path = "/tmp/x.sock";
  o.listen = std::vector<std::string>{"none"};
  c = ResolveConfig(RootEnv(), o);
  EXPECT_EQ(c->unix_path, "/tmp/x.sock");
  EXPECT_TRUE(c->listen.empty());
}

// blocksnapctl's default socket is the daemon's: the same function, whatever the environment.
TEST_F(ConfigFileTest, DefaultControlPathIsTheDaemons) {
  Environment e = UserEnv();
  e.home = dir_.string();  // no config file there
  e.xdg_runtime_dir.clear();
  EXPECT_EQ(DefaultControlPath(e), "/tmp/blocksnap-1000/control.sock");
  auto c = ResolveConfig(e, {});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(DefaultControlPath(e), c->control_path);
  e.xdg_runtime_dir = "/run/user/1000";
  EXPECT_EQ(DefaultControlPath(e), "/run/user/1000/blocksnap/control.sock");
  // The default config file moves it, for the daemon and so for the client.
  e.xdg_config_home = dir_.string();
  std::filesystem::create_directories(dir_ / "blocksnap");
  std::ofstream(dir_ / "blocksnap" / "blocksnapd.yaml") << "runtime_dir: /rt\n";
  EXPECT_EQ(DefaultControlPath(e), "/rt/control.sock");
  std::ofstream(dir_ / "blocksnap" / "blocksnapd.yaml") << "control: /c.sock\n";
  EXPECT_EQ(DefaultControlPath(e), "/c.sock");
  // A broken file is no file: the built-in default.
  std::ofstream(dir_ / "blocksnap" / "blocksnapd.yaml") << "bogus: 1\n";
  EXPECT_EQ(DefaultControlPath(e), "/run/user/1000/blocksnap/control.sock");
}

}  // namespace
}  // namespace blocksnap
