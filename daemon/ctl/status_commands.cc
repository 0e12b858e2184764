#include "ctl/status_commands.h"

#include <cstdio>
#include <iostream>
#include <string>

#include "ctl/output.h"
#include "ctl/snapshot_client.h"

namespace blocksnap::ctl {
namespace {

uint64_t U(const SnapJson& doc, const char* key) {
  auto it = doc.find(key);
  return it != doc.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

int RunStatus(CommandContext& ctx) {
  Result<BusClient*> client = ctx.Client();
  if (!client.ok()) return Fail(client.status());
  Result<SnapJson> doc = GetStatus(**client);
  if (!doc.ok()) return Fail(doc.status());
  if (ctx.json) {
    PrintJson(*doc);
    return kExitOk;
  }
  char ratio[32];
  std::snprintf(ratio, sizeof ratio, "%.2f", doc->value("dedup_ratio", 1.0));
  Details d;
  d.Add("Volumes", std::to_string(U(*doc, "volumes")));
  d.Add("Snapshots", std::to_string(U(*doc, "snapshots")));
  d.Add("Chunks", std::to_string(U(*doc, "chunks")));
  d.Add("Stored", FormatSize(U(*doc, "stored_bytes")) + " (" +
                      std::to_string(U(*doc, "stored_bytes")) + " bytes)");
  d.Add("Logical", FormatSize(U(*doc, "logical_bytes")) + " (" +
                       std::to_string(U(*doc, "logical_bytes")) + " bytes)");
  d.Add("On disk", FormatSize(U(*doc, "disk_bytes")) + " (estimate)");
  d.Add("Dedup ratio", ratio);
  d.Print(std::cout);
  return kExitOk;
}

}  // namespace

void AddStatusCommand(CLI::App& app, CommandContext& ctx) {
  CLI::App* status = app.add_subcommand("status", "Show what the snapshot store holds");
  status->callback([&ctx] { ctx.action = [&ctx] { return RunStatus(ctx); }; });
}

}  // namespace blocksnap::ctl
