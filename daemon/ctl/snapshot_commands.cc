#include "ctl/snapshot_commands.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "ctl/output.h"
#include "ctl/snapshot_client.h"
#include "ctl/tag_args.h"
#include "util/parse.h"
#include "util/unique_fd.h"

namespace blocksnap::ctl {
namespace {

// Parsed arguments of every snapshot subcommand, shared by the CLI11 callbacks.
struct SnapshotArgs {
  std::string volume;
  std::string id;
  std::string id2;
  std::string file;
  std::vector<std::string> tag_assignments;
  std::vector<std::string> untag_keys;
  bool wait = false;
};

uint64_t U(const SnapJson& doc, const char* key) {
  auto it = doc.find(key);
  return it != doc.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}
std::string S(const SnapJson& doc, const char* key) {
  auto it = doc.find(key);
  return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
}
// "yes" for a locked snapshot; a daemon that knows no locks sends no "locked": "no".
std::string LockedText(const SnapJson& doc) {
  auto it = doc.find("locked");
  return it != doc.end() && it->is_boolean() && it->get<bool>() ? "yes" : "no";
}
double Progress(const SnapJson& doc) {
  auto it = doc.find("progress");
  return it != doc.end() && it->is_number() ? it->get<double>() : 0.0;
}
Tags TagsOf(const SnapJson& doc) {
  Tags tags;
  if (auto it = doc.find("tags"); it != doc.end() && it->is_object())
    for (auto t = it->begin(); t != it->end(); ++t)
      tags[t.key()] = t->is_string() ? t->get<std::string>() : t->dump();
  return tags;
}
std::string Percent(double p) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.0f%%", p * 100.0);
  return buf;
}

void PrintDetails(const SnapJson& s) {
  Details d;
  d.Add("ID", S(s, "id"));
  d.Add("Volume", S(s, "volume") + " (" + S(s, "volume_id") + ")");
  std::string state = S(s, "state");
  if (!S(s, "error").empty()) state += ": " + S(s, "error");
  d.Add("State", state);
  d.Add("Progress", Percent(Progress(s)) + " (" + std::to_string(U(s, "chunks_done")) + "/" +
                        std::to_string(U(s, "chunks_total")) + " chunks, " +
                        FormatSize(U(s, "bytes_done")) + " of " + FormatSize(U(s, "bytes_total")) +
                        ")");
  d.Add("Locked", LockedText(s));
  d.Add("Created", S(s, "created"));
  d.Add("Size", FormatSize(U(s, "size")) + " (" + std::to_string(U(s, "size")) + " bytes)");
  d.Add("Chunk size", FormatSize(U(s, "chunk_size")));
  d.Add("Added", FormatSize(U(s, "added_bytes")) + " (" + std::to_string(U(s, "added_bytes")) +
                     " bytes, " + std::to_string(U(s, "chunks")) + " chunks changed)");
  d.Add("Pause", std::to_string(U(s, "pause_us")) + " us");
  d.Add("Tags", FormatTagList(TagsOf(s)));
  d.Print(std::cout);
}

// The final state of a followed snapshot: exit 1 naming the reason when it ended in error.
int Finish(const SnapJson& s, bool print_json) {
  if (print_json) PrintJson(s);
  if (S(s, "state") == "error")
    return Fail("snapshot " + S(s, "id") + " failed: " +
                (S(s, "error").empty() ? std::string("unknown error") : S(s, "error")));
  return kExitOk;
}

// Follows a pending snapshot to its end. On a terminal, a progress bar redrawn from
// GetSnapshot every 200 ms; otherwise one WaitSnapshot call that the daemon answers at the end.
Result<SnapJson> Follow(BusClient& c, const std::string& id) {
  if (!isatty(STDOUT_FILENO)) return WaitSnapshot(c, id);
  for (;;) {
    BS_ASSIGN_OR_RETURN(SnapJson s, GetSnapshot(c, id));
    const double p = Progress(s);
    const int filled = static_cast<int>(p * 30.0);
    std::cout << "\r[" << std::string(filled, '#') << std::string(30 - filled, ' ') << "] "
              << Percent(p) << "  " << FormatSize(U(s, "bytes_done")) << " / "
              << FormatSize(U(s, "bytes_total")) << "   " << std::flush;
    if (S(s, "state") != "pending") {
      std::cout << '\n';
      return s;
    }
    poll(nullptr, 0, 200);  // the redraw interval of the bar, not a synchronisation
  }
}

int RunCreate(CommandContext& ctx, const SnapshotArgs& a) {
  Result<Tags> tags = ParseTagList(a.tag_assignments);
  if (!tags.ok()) return Fail(tags.status());
  Result<BusClient*> client = ctx.Client();
  if (!client.ok()) return Fail(client.status());
  Result<std::string> id = CreateSnapshot(**client, a.volume, *tags);
  if (!id.ok()) return Fail(id.status());
  if (!ctx.json) std::cout << *id << std::endl;
  if (!a.wait) {
    if (!ctx.json) return kExitOk;
    Result<SnapJson> s = GetSnapshot(**client, *id);
    if (!s.ok()) return Fail(s.status());
    PrintJson(*s);
    return kExitOk;
  }
  Result<SnapJson> s = ctx.json ? WaitSnapshot(**client, *id) : Follow(**client, *id);
  if (!s.ok()) return Fail(s.status());
  return Finish(*s, ctx.json);
}

int RunList(CommandContext& ctx, const SnapshotArgs& a) {
  Result<BusClient*> client = ctx.Client();
  if (!client.ok()) return Fail(client.status());
  Result<SnapJson> list = ListSnapshots(**client, a.volume);
  if (!list.ok()) return Fail(list.status());
  if (ctx.json) {
    PrintJson(*list);
    return kExitOk;
  }
  Table table({"ID", "VOLUME", "STATE", "LOCKED", "CREATED", "SIZE", "ADDED", "PROGRESS", "TAGS"});
  for (const SnapJson& s : *list)
    table.AddRow({S(s, "id"), S(s, "volume"), S(s, "state"), LockedText(s), S(s, "created"),
                  FormatSize(U(s, "size")), FormatSize(U(s, "added_bytes")), Percent(Progress(s)),
                  FormatTagList(TagsOf(s))});
  table.Print(std::cout);
  return kExitOk;
}

int RunShow(CommandContext& ctx, const SnapshotArgs& a) {
  Result<BusClient*> client = ctx.Client();
  if (!client.ok()) return Fail(client.status());
  Result<SnapJson> s = GetSnapshot(**client, a.id);
  if (!s.ok()) return Fail(s.status());
  if (ctx.json)
    PrintJson(*s);
  else
    PrintDetails(*s);
  return kExitOk;
}

int RunDelete(CommandContext& ctx, const SnapshotArgs& a) {
  Result<BusClient*> client = ctx.Client();
  if (!client.ok()) return Fail(client.status());
  Result<SnapJson> before = GetSnapshot(**client, a.id);
  if (!before.ok()) return Fail(before.status());
  if (Status st = DeleteSnapshot(**client, a.id); !st.ok()) return Fail(st);
  if (ctx.json) PrintJson(*before);
  return kExitOk;
}

int RunTag(CommandContext& ctx, const SnapshotArgs& a) {
  Result<Tags> set = ParseTagEdit(a.tag_assignments, a.untag_keys);
  if (!set.ok()) return Fail(set.status());
  Result<BusClient*> client = ctx.Client();
  if (!client.ok()) return Fail(client.status());
  Result<SnapJson> s = TagSnapshot(**client, a.id, *set, a.untag_keys);
  if (!s.ok()) return Fail(s.status());
  if (ctx.json) PrintJson(*s);
  return kExitOk;
}

int RunSetLocked(CommandContext& ctx, const SnapshotArgs& a, bool locked) {
  Result<BusClient*> client = ctx.Client();
  if (!client.ok()) return Fail(client.status());
  Result<SnapJson> s = SetSnapshotLocked(**client, a.id, locked);
  if (!s.ok()) return Fail(s.status());
  if (ctx.json) PrintJson(*s);
  return kExitOk;
}
int RunLock(CommandContext& ctx, const SnapshotArgs& a) {
  return RunSetLocked(ctx, a, true);
}
int RunUnlock(CommandContext& ctx, const SnapshotArgs& a) {
  return RunSetLocked(ctx, a, false);
}

int RunDump(CommandContext& ctx, const SnapshotArgs& a) {
  // We open FILE (our identity, our view of the filesystem, mode 0666 & umask) and pass the
  // fd; the daemon only writes to it. "-" is stdout.
  const bool to_stdout = a.file == "-";
  UniqueFd file;
  int fd = STDOUT_FILENO;
  if (to_stdout) {
    if (::isatty(STDOUT_FILENO))
      return Fail("refusing to write a raw image to a terminal: redirect stdout or give a FILE");
  } else {
    file.reset(::open(a.file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666));
    if (!file) return Fail(FromErrno(errno, "cannot open " + a.file));
    fd = file.get();
  }
  Status st;
  if (Result<BusClient*> client = ctx.Client(); !client.ok())
    st = client.status();
  else
    st = DumpSnapshot(**client, a.id, fd);
  if (!st.ok()) {
    // No partial or empty image left under FILE's name (a device or FIFO stays).
    struct stat sb {};
    if (file && ::fstat(file.get(), &sb) == 0 && S_ISREG(sb.st_mode)) ::unlink(a.file.c_str());
    return Fail(st);
  }
  if (ctx.json && !to_stdout) {
    std::error_code ec;
    std::string path = std::filesystem::absolute(a.file, ec).lexically_normal().string();
    PrintJson({{"id", a.id}, {"path", ec ? a.file : path}});
  }
  return kExitOk;
}

int RunVerify(CommandContext& ctx, const SnapshotArgs& a) {
  Result<BusClient*> client = ctx.Client();
  if (!client.ok()) return Fail(client.status());
  Result<VerifyResult> v = VerifySnapshot(**client, a.id);
  if (!v.ok()) return Fail(v.status());
  if (ctx.json) {
    SnapJson bad = SnapJson::array();
    for (const BadChunkInfo& b : v->bad)
      bad.push_back({{"chunk", b.chunk}, {"problem", b.problem}});
    PrintJson({{"id", a.id}, {"ok", v->ok}, {"bad", bad}});
  } else if (v->ok) {
    std::cout << a.id << ": ok\n";
  }
  if (v->ok) return kExitOk;
  std::string msg = "snapshot " + a.id + " has " + std::to_string(v->bad.size()) + " bad chunk(s):";
  for (const BadChunkInfo& b : v->bad)
    msg += " chunk " + std::to_string(b.chunk) + " (" + b.problem + ");";
  if (!msg.empty() && msg.back() == ';') msg.pop_back();
  return Fail(msg);
}

int RunDiff(CommandContext& ctx, const SnapshotArgs& a) {
  Result<BusClient*> client = ctx.Client();
  if (!client.ok()) return Fail(client.status());
  auto runs = DiffSnapshots(**client, a.id, a.id2);
  if (!runs.ok()) return Fail(runs.status());
  if (ctx.json) {
    SnapJson doc = SnapJson::array();
    for (const auto& [off, len] : *runs) doc.push_back({{"offset", off}, {"length", len}});
    PrintJson(doc);
    return kExitOk;
  }
  Table table({"OFFSET", "LENGTH"});
  for (const auto& [off, len] : *runs) table.AddRow({std::to_string(off), std::to_string(len)});
  table.Print(std::cout);
  return kExitOk;
}

}  // namespace

void AddSnapshotCommands(CLI::App& app, CommandContext& ctx) {
  auto args = std::make_shared<SnapshotArgs>();
  CLI::App* snap =
      app.add_subcommand("snapshot", "Create, list, show, lock, dump and delete snapshots");
  snap->require_subcommand(1);
  auto bind = [&ctx, args](CLI::App* sub, int (*run)(CommandContext&, const SnapshotArgs&)) {
    sub->callback(
        [&ctx, args, run] { ctx.action = [&ctx, args, run] { return run(ctx, *args); }; });
  };

  CLI::App* create = snap->add_subcommand("create", "Snapshot a volume; prints the snapshot id");
  create->add_option("VOLUME", args->volume, "Volume name or id")->required();
  create->add_option("--tag", args->tag_assignments, "Tag K=V (repeatable)")
      ->allow_extra_args(false);
  create->add_flag("--wait", args->wait, "Follow the copy to its end; exit 1 if it fails");
  bind(create, RunCreate);

  CLI::App* list = snap->add_subcommand("list", "List snapshots (of one volume)");
  list->add_option("VOLUME", args->volume, "Volume name or id");
  bind(list, RunList);

  CLI::App* show = snap->add_subcommand("show", "Show one snapshot");
  show->add_option("SNAP", args->id, "Snapshot id")->required();
  bind(show, RunShow);

  CLI::App* del =
      snap->add_subcommand("delete", "Delete a snapshot, freeing what nothing else reads");
  del->add_option("SNAP", args->id, "Snapshot id")->required();
  bind(del, RunDelete);

  CLI::App* tag = snap->add_subcommand("tag", "Set (K=V) and remove (--untag K) tags");
  tag->add_option("SNAP", args->id, "Snapshot id")->required();
  AddTagEditOptions(tag, "snapshot tag", &args->tag_assignments, &args->untag_keys,
                    [&ctx, args] { ctx.action = [&ctx, args] { return RunTag(ctx, *args); }; });

  CLI::App* lock = snap->add_subcommand(
      "lock", "Lock a snapshot: no delete (manual or policy retention) until it is unlocked");
  lock->add_option("SNAP", args->id, "Snapshot id")->required();
  bind(lock, RunLock);

  CLI::App* unlock = snap->add_subcommand("unlock", "Unlock a snapshot so it can be deleted");
  unlock->add_option("SNAP", args->id, "Snapshot id")->required();
  bind(unlock, RunUnlock);

  CLI::App* dump = snap->add_subcommand(
      "dump", "Write the snapshot as a raw image to FILE (sparse), a device, or stdout with '-'");
  dump->add_option("SNAP", args->id, "Snapshot id")->required();
  dump->add_option("FILE", args->file, "Output file (opened by blocksnapctl), '-' for stdout")
      ->required();
  bind(dump, RunDump);

  CLI::App* verify = snap->add_subcommand("verify", "Re-read and re-hash every chunk");
  verify->add_option("SNAP", args->id, "Snapshot id")->required();
  bind(verify, RunVerify);

  CLI::App* diff = snap->add_subcommand("diff", "Byte ranges that differ between two snapshots");
  diff->add_option("SNAP1", args->id, "Older snapshot id")->required();
  diff->add_option("SNAP2", args->id2, "Newer snapshot id")->required();
  bind(diff, RunDiff);
}

}  // namespace blocksnap::ctl
