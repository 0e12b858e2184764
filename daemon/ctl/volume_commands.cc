#include "ctl/volume_commands.h"

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "bus/basic_codec.h"  // [restore] AppendTags
#include "ctl/output.h"
#include "ctl/tag_args.h"
#include "util/parse.h"

namespace blocksnap::ctl {
namespace {

// Parsed arguments of every volume subcommand; owned by the callbacks through a shared_ptr
// so they live as long as the CLI11 app that writes into them.
struct VolumeArgs {
  std::string name;
  std::string size;
  std::string chunk_size;
  std::vector<std::string> tag_assignments;
  std::vector<std::string> untag_keys;
  bool force = false;
  std::string from_snapshot;  // [restore]
  bool hydrate = false;       // [restore]
};

// The JSON object of a volume (docs/DBUS.md and DESIGN.md §7 name these keys; scripts rely
// on them). uri is null when the daemon serves no NBD TCP listener.
nlohmann::ordered_json VolumeToJson(const VolumeInfo& v) {
  nlohmann::ordered_json clients = nlohmann::ordered_json::array();
  for (const ClientEntry& c : v.clients)
    clients.push_back(
        {{"address", c.address}, {"export", c.export_name}, {"connected", c.connected}});
  return {
      {"id", v.id},
      {"name", v.name},
      {"size", v.size},
      {"chunk_size", v.chunk_size},
      {"tags", v.tags},
      {"state", v.state},
      {"created", v.created},
      {"uri", v.uri.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(v.uri)},
      {"clients", clients},
      {"object_path", v.path},
      // [restore]
      {"origin_snapshot", v.origin_snapshot.empty() ? nlohmann::ordered_json(nullptr)
                                                    : nlohmann::ordered_json(v.origin_snapshot)},
      {"hydrated_bytes", v.hydrated_bytes},
      {"hydrate_total_bytes", v.hydrate_total_bytes},
  };
}

void PrintVolumeDetails(const VolumeInfo& v) {
  Details d;
  d.Add("Name", v.name);
  d.Add("ID", v.id);
  d.Add("Size", FormatSize(v.size) + " (" + std::to_string(v.size) + " bytes)");
  d.Add("Chunk size", FormatSize(v.chunk_size));
  d.Add("State", v.state);
  d.Add("Created", v.created);
  d.Add("Tags", FormatTagList(v.tags));
  d.Add("URI", v.uri.empty() ? "-" : v.uri);
  d.Add("Object", v.path);
  std::string clients = v.clients.empty() ? "none" : std::to_string(v.clients.size());
  for (const ClientEntry& c : v.clients)
    clients += "\n" + c.address + " export " + c.export_name + " since " + c.connected;
  d.Add("Clients", clients);
  if (!v.origin_snapshot.empty()) {  // [restore]
    d.Add("Origin", v.origin_snapshot);
    const uint64_t pct =
        v.hydrate_total_bytes ? v.hydrated_bytes * 100 / v.hydrate_total_bytes : 100;
    d.Add("Hydrated", FormatSize(v.hydrated_bytes) + " of " + FormatSize(v.hydrate_total_bytes) +
                          " (" + std::to_string(pct) + "%, " + std::to_string(v.hydrated_bytes) +
                          " of " + std::to_string(v.hydrate_total_bytes) + " bytes)");
  }
  d.Print(std::cout);
}

// [restore] A usage error found after parsing (options that depend on each other): exit 2.
int Usage(const std::string& message) {
  Fail(message);
  return kExitUsage;
}

// [restore] volume create NAME --from-snapshot SNAP [--hydrate] [--size S] [--tag K=V]...
int RunCreateFromSnapshot(CommandContext& ctx, const VolumeArgs& a) {
  if (Status st = ValidateVolumeName(a.name); !st.ok()) return Fail(st);
  if (!a.chunk_size.empty())
    return Fail(
        InvalidArgument("--chunk-size cannot be given with --from-snapshot (a restore "
                        "keeps the snapshot's chunk size)"));
  uint64_t size = 0;  // the snapshot's
  if (!a.size.empty()) {
    Result<uint64_t> parsed = ParseSize(a.size);
    if (!parsed.ok()) return Fail(parsed.status());
    if (Status st = ValidateVolumeSize(*parsed); !st.ok()) return Fail(st);
    size = *parsed;
  }
  Result<Tags> tags = ParseTagList(a.tag_assignments);
  if (!tags.ok()) return Fail(tags.status());
  Result<BusClient*> client = ctx.Client();
  if (!client.ok()) return Fail(client.status());
  MessagePtr reply;
  Status st = (*client)->CallManager(
      "CreateVolumeFromSnapshot",
      [&](sd_bus_message* m) {
        // The daemon builds the restore base per chunk before it answers: no call timeout.
        int r = NoCallTimeout(m);
        if (r >= 0)
          r = sd_bus_message_append(m, "sst", a.name.c_str(), a.from_snapshot.c_str(), size);
        if (r >= 0) r = AppendTags(m, *tags);
        if (r >= 0) r = sd_bus_message_append(m, "b", a.hydrate ? 1 : 0);
        return r;
      },
      &reply);
  if (!st.ok()) return Fail(st);
  const char* object = nullptr;
  const char* id = nullptr;
  if (int r = sd_bus_message_read(reply.get(), "os", &object, &id); r < 0)
    return Fail((*client)->MessageError(r));
  if (!ctx.json) {
    std::cout << id << '\n';
    return kExitOk;
  }
  Result<VolumeInfo> info = (*client)->GetVolume(id);
  if (!info.ok()) return Fail(info.status());
  PrintJson(VolumeToJson(*info));
  return kExitOk;
}

int RunCreate(CommandContext& ctx, const VolumeArgs& a) {
  if (!a.from_snapshot.empty()) return RunCreateFromSnapshot(ctx, a);  // [restore]
  if (a.hydrate) return Usage("--hydrate needs --from-snapshot");
  if (a.size.empty()) return Usage("--size is required");
  CreateVolumeArgs req;
  req.name = a.name;
  if (Status st = ValidateVolumeName(a.name); !st.ok()) return Fail(st);
  Result<uint64_t> size = ParseSize(a.size);
  if (!size.ok()) return Fail(size.status());
  if (Status st = ValidateVolumeSize(*size); !st.ok()) return Fail(st);
  req.size = *size;
  if (!a.chunk_size.empty()) {
    Result<uint64_t> chunk = ParseSize(a.chunk_size);
    if (!chunk.ok()) return Fail(chunk.status());
    if (Status st = ValidateChunkSize(*chunk); !st.ok()) return Fail(st);
    req.chunk_size = *chunk;
  }
  if (Status st = ValidateChunkCount(req.size, req.chunk_size ? req.chunk_size : kDefaultChunkSize);
      !st.ok())
    return Fail(st);
  Result<Tags> tags = ParseTagList(a.tag_assignments);
  if (!tags.ok()) return Fail(tags.status());
  req.tags = *tags;

  Result<BusClient*> client = ctx.Client();
  if (!client.ok()) return Fail(client.status());
  Result<std::string> id = (*client)->CreateVolume(req);
  if (!id.ok()) return Fail(id.status());
  if (!ctx.json) {
    std::cout << *id << '\n';
    return kExitOk;
  }
  Result<VolumeInfo> info = (*client)->GetVolume(*id);
  if (!info.ok()) return Fail(info.status());
  PrintJson(VolumeToJson(*info));
  return kExitOk;
}

int RunList(CommandContext& ctx) {
  Result<BusClient*> client = ctx.Client();
  if (!client.ok()) return Fail(client.status());
  Result<std::vector<VolumeInfo>> volumes = (*client)->ListVolumes();
  if (!volumes.ok()) return Fail(volumes.status());
  if (ctx.json) {
    nlohmann::ordered_json doc = nlohmann::ordered_json::array();
    for (const VolumeInfo& v : *volumes) doc.push_back(VolumeToJson(v));
    PrintJson(doc);
    return kExitOk;
  }
  Table table({"NAME", "ID", "SIZE", "CHUNK", "STATE", "TAGS"});
  for (const VolumeInfo& v : *volumes)
    table.AddRow({v.name, v.id, FormatSize(v.size), FormatSize(v.chunk_size), v.state,
                  FormatTagList(v.tags)});
  table.Print(std::cout);
  return kExitOk;
}

int RunShow(CommandContext& ctx, const VolumeArgs& a) {
  Result<BusClient*> client = ctx.Client();
  if (!client.ok()) return Fail(client.status());
  Result<VolumeInfo> info = (*client)->GetVolume(a.name);
  if (!info.ok()) return Fail(info.status());
  if (ctx.json)
    PrintJson(VolumeToJson(*info));
  else
    PrintVolumeDetails(*info);
  return kExitOk;
}

int RunDelete(CommandContext& ctx, const VolumeArgs& a) {
  Result<BusClient*> client = ctx.Client();
  if (!client.ok()) return Fail(client.status());
  // --json prints the volume as it was; fetch it first (an unknown name fails here with the
  // same NotFound the delete would give).
  std::optional<VolumeInfo> before;
  if (ctx.json) {
    Result<VolumeInfo> info = (*client)->GetVolume(a.name);
    if (!info.ok()) return Fail(info.status());
    before = *info;
  }
  if (Status st = (*client)->DeleteVolume(a.name, a.force); !st.ok()) return Fail(st);
  if (before) PrintJson(VolumeToJson(*before));
  return kExitOk;
}

int RunTag(CommandContext& ctx, const VolumeArgs& a) {
  Result<Tags> set = ParseTagEdit(a.tag_assignments, a.untag_keys);
  if (!set.ok()) return Fail(set.status());
  Result<BusClient*> client = ctx.Client();
  if (!client.ok()) return Fail(client.status());
  if (Status st = (*client)->TagVolume(a.name, *set, a.untag_keys); !st.ok()) return Fail(st);
  if (ctx.json) {
    Result<VolumeInfo> info = (*client)->GetVolume(a.name);
    if (!info.ok()) return Fail(info.status());
    PrintJson(VolumeToJson(*info));
  }
  return kExitOk;
}

}  // namespace

void AddVolumeCommands(CLI::App& app, CommandContext& ctx) {
  auto args = std::make_shared<VolumeArgs>();
  CLI::App* volume = app.add_subcommand("volume", "Create, list, show, tag and delete volumes");
  volume->require_subcommand(1);

  CLI::App* create = volume->add_subcommand("create", "Create a volume; prints its id");
  create->add_option("NAME", args->name, "Volume name: 1-64 of [A-Za-z0-9._-]")->required();
  create->add_option("--size", args->size,
                     "Size with K/M/G/T suffix, a multiple of 4K (with --from-snapshot: at "
                     "least the snapshot's size, which is the default)");
  create->add_option("--chunk-size", args->chunk_size, "Chunk size: power of two 4K..4M (64K)");
  create->add_option("--tag", args->tag_assignments, "Tag K=V (repeatable)")
      ->allow_extra_args(false);
  create->add_option("--from-snapshot", args->from_snapshot,
                     "Restore: the new volume starts as this snapshot (served at once)");
  create->add_flag("--hydrate", args->hydrate,
                   "With --from-snapshot: fast restore, `hydrating` until every chunk is local");
  create->callback([&ctx, args] { ctx.action = [&ctx, args] { return RunCreate(ctx, *args); }; });

  CLI::App* list = volume->add_subcommand("list", "List volumes");
  list->callback([&ctx] { ctx.action = [&ctx] { return RunList(ctx); }; });

  CLI::App* show = volume->add_subcommand("show", "Show one volume");
  show->add_option("NAME", args->name, "Volume name or id")->required();
  show->callback([&ctx, args] { ctx.action = [&ctx, args] { return RunShow(ctx, *args); }; });

  CLI::App* del = volume->add_subcommand("delete", "Delete a volume and its image");
  del->add_option("NAME", args->name, "Volume name or id")->required();
  del->add_flag("--force", args->force, "Disconnect attached NBD clients first");
  del->callback([&ctx, args] { ctx.action = [&ctx, args] { return RunDelete(ctx, *args); }; });

  CLI::App* tag = volume->add_subcommand("tag", "Set (K=V) and remove (--untag K) tags");
  tag->add_option("NAME", args->name, "Volume name or id")->required();
  AddTagEditOptions(tag, "volume tag", &args->tag_assignments, &args->untag_keys,
                    [&ctx, args] { ctx.action = [&ctx, args] { return RunTag(ctx, *args); }; });

  CLI::App* untag = volume->add_subcommand("untag", "Remove tags by key");
  untag->add_option("NAME", args->name, "Volume name or id")->required();
  untag->add_option("KEYS", args->untag_keys, "Tag keys to remove")->required();
  untag->callback([&ctx, args] { ctx.action = [&ctx, args] { return RunTag(ctx, *args); }; });
}

}  // namespace blocksnap::ctl
