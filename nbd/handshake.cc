#include "nbd/handshake.h"

#include <algorithm>

#include "nbd/meta_context.h"
#include "nbd/wire.h"

namespace blocksnap::nbd {
namespace {

constexpr size_t kClientFlagsSize = 4;
constexpr size_t kOptionHeaderSize = 16;  // IHAVEOPT, option, length

}  // namespace

Handshake::Handshake(ExportCatalog& catalog, size_t max_output)
    : catalog_(catalog), max_output_(max_output) {
  Append64(out_, kNbdMagic);
  Append64(out_, kIHaveOpt);
  Append16(out_, kFlagFixedNewstyle | kFlagNoZeroes);
}

void Handshake::Feed(std::string_view data) {
  in_.append(data);
  stalled_ = false;
  while (state_ == State::kNegotiating) {
    if (out_.size() >= max_output_) {
      // Enough replies for one batch: the rest waits until the transport has sent them.
      stalled_ = in_pos_ < in_.size();
      break;
    }
    if (!Step()) break;
  }
  // One compaction per Feed: erasing after every option would be quadratic in the input.
  in_.erase(0, in_pos_);
  in_pos_ = 0;
  if (state_ == State::kClosed) in_.clear();
  if (state_ != State::kNegotiating) stalled_ = false;
}

void Handshake::Close(std::string reason) {
  state_ = State::kClosed;
  close_reason_ = std::move(reason);
}

bool Handshake::Step() {
  const auto* p = reinterpret_cast<const uint8_t*>(in_.data()) + in_pos_;
  const size_t avail = in_.size() - in_pos_;
  if (!got_client_flags_) {
    if (avail < kClientFlagsSize) return false;
    uint32_t flags = Get32(p);
    in_pos_ += kClientFlagsSize;
    // An unknown client flag means a protocol we do not speak: the spec says drop.
    if (flags & ~(kClientFixedNewstyle | kClientNoZeroes)) {
      Close("unknown client flags");
      return false;
    }
    neg_.no_zeroes = flags & kClientNoZeroes;
    got_client_flags_ = true;
    return true;
  }
  if (avail < kOptionHeaderSize) return false;
  if (Get64(p) != kIHaveOpt) {
    Close("bad option magic");
    return false;
  }
  uint32_t option = Get32(p + 8);
  uint32_t length = Get32(p + 12);
  if (length > kMaxOptionLength) {
    // Nothing legitimate is this long; refuse before buffering it.
    Close("option payload too large");
    return false;
  }
  if (avail < kOptionHeaderSize + length) return false;
  // A view into in_: nothing appends to or erases from in_ until the option is handled.
  std::string_view data(in_.data() + in_pos_ + kOptionHeaderSize, length);
  in_pos_ += kOptionHeaderSize + length;
  HandleOption(option, data);
  return state_ == State::kNegotiating;
}

void Handshake::Reply(uint32_t option, uint32_t type, std::string_view data) {
  Append64(out_, kOptReplyMagic);
  Append32(out_, option);
  Append32(out_, type);
  Append32(out_, uint32_t(data.size()));
  out_.append(data);
}

void Handshake::ReplyError(uint32_t option, uint32_t type, std::string_view message) {
  Reply(option, type, message);
}

void Handshake::HandleOption(uint32_t option, std::string_view data) {
  switch (option) {
    case kOptExportName:
      return HandleExportName(data);
    case kOptAbort:
      // The spec lets the server ack before closing; clients may already be gone.
      Reply(option, kRepAck);
      return Close("client aborted");
    case kOptList:
      return HandleList(data);
    case kOptInfo:
    case kOptGo:
      return HandleInfoOrGo(option, data);
    case kOptStructuredReply:
      if (!data.empty()) return ReplyError(option, kRepErrInvalid, "option takes no data");
      if (neg_.structured_replies) {
        return ReplyError(option, kRepErrInvalid, "structured replies already negotiated");
      }
      neg_.structured_replies = true;
      return Reply(option, kRepAck);
    case kOptListMetaContext:
    case kOptSetMetaContext:
      return HandleMetaContext(option, data);
    default:
      // STARTTLS (no TLS configured), EXTENDED_HEADERS and anything unknown.
      return ReplyError(option, kRepErrUnsup, "option not supported");
  }
}

void Handshake::HandleExportName(std::string_view data) {
  auto exp = data.size() <= kMaxStringLength ? catalog_.Open(data) : nullptr;
  if (!exp) {
    // EXPORT_NAME has no error reply: the only answer is to disconnect.
    return Close("unknown export");
  }
  if (!MetaContextsStillMatch(*exp, data)) return Close("meta contexts changed since set");
  if (meta_export_ != data) neg_.meta_contexts.clear();
  neg_.export_name = std::string(data);
  const ExportInfo& info = exp->info();
  Append64(out_, info.size);
  Append16(out_, TransmissionFlags(info, neg_.structured_replies));
  if (!neg_.no_zeroes) out_.append(124, '\0');
  export_ = std::move(exp);
  state_ = State::kTransmission;
}

void Handshake::HandleList(std::string_view data) {
  if (!data.empty()) return ReplyError(kOptList, kRepErrInvalid, "option takes no data");
  for (const auto& e : catalog_.List()) {
    std::string item;
    Append32(item, uint32_t(e.name.size()));
    item += e.name;
    item += e.description;
    Reply(kOptList, kRepServer, item);
  }
  Reply(kOptList, kRepAck);
}

void Handshake::HandleInfoOrGo(uint32_t option, std::string_view data) {
  // u32 name length, name, u16 number of info requests, u16 each.
  Reader r(data);
  uint32_t name_len = 0;
  uint16_t n_infos = 0;
  std::string name;
  if (!r.Read32(name_len) || name_len > kMaxStringLength || !r.ReadString(name_len, name) ||
      !r.Read16(n_infos) || r.remaining() != size_t(n_infos) * 2) {
    return ReplyError(option, kRepErrInvalid, "malformed request");
  }
  bool want_name = false, want_description = false, want_block_size = false;
  for (uint16_t i = 0; i < n_infos; ++i) {
    uint16_t info = 0;
    r.Read16(info);
    want_name |= info == kInfoName;
    want_description |= info == kInfoDescription;
    want_block_size |= info == kInfoBlockSize;
  }
  auto exp = catalog_.Open(name);
  if (!exp) return ReplyError(option, kRepErrUnknown, "unknown export: " + name);
  if (option == kOptGo && !MetaContextsStillMatch(*exp, name)) {
    return ReplyError(option, kRepErrInvalid,
                      "meta contexts changed since they were set (a snapshot was deleted): "
                      "set them again");
  }
  const ExportInfo& info = exp->info();

  std::string item;
  Append16(item, kInfoExport);
  Append64(item, info.size);
  Append16(item, TransmissionFlags(info, neg_.structured_replies));
  Reply(option, kRepInfo, item);
  if (want_name) {
    item.clear();
    Append16(item, kInfoName);
    item += name;
    Reply(option, kRepInfo, item);
  }
  if (want_description && !info.description.empty()) {
    item.clear();
    Append16(item, kInfoDescription);
    item += info.description;
    Reply(option, kRepInfo, item);
  }
  // Block sizes are always sent (the spec allows it); they are only enforced on a client
  // that asked for them, see Negotiated::block_size_agreed.
  item.clear();
  Append16(item, kInfoBlockSize);
  Append32(item, info.block_sizes.minimum);
  Append32(item, info.block_sizes.preferred);
  Append32(item, info.block_sizes.maximum);
  Reply(option, kRepInfo, item);
  Reply(option, kRepAck);

  if (option == kOptGo) {
    // Contexts chosen for another export do not carry over.
    if (meta_export_ != name) neg_.meta_contexts.clear();
    neg_.export_name = name;
    neg_.block_size_agreed = want_block_size;
    export_ = std::move(exp);
    state_ = State::kTransmission;
  }
}

void Handshake::HandleMetaContext(uint32_t option, std::string_view data) {
  if (!neg_.structured_replies) {
    return ReplyError(option, kRepErrInvalid, "structured replies not negotiated");
  }
  // u32 export name length, name, u32 number of queries, each u32 length + query.
  Reader r(data);
  uint32_t name_len = 0, n_queries = 0;
  std::string name;
  if (!r.Read32(name_len) || name_len > kMaxStringLength || !r.ReadString(name_len, name) ||
      !r.Read32(n_queries)) {
    return ReplyError(option, kRepErrInvalid, "malformed request");
  }
  std::vector<std::string> queries;
  for (uint32_t i = 0; i < n_queries; ++i) {
    uint32_t len = 0;
    std::string q;
    if (!r.Read32(len) || len > kMaxStringLength || !r.ReadString(len, q)) {
      return ReplyError(option, kRepErrInvalid, "malformed query");
    }
    queries.push_back(std::move(q));
  }
  if (r.remaining() != 0) return ReplyError(option, kRepErrInvalid, "trailing data");
  auto exp = catalog_.Open(name);
  if (!exp) return ReplyError(option, kRepErrUnknown, "unknown export: " + name);
  auto available = exp->MetaContexts();

  std::vector<size_t> matched = option == kOptListMetaContext ? MatchListQueries(available, queries)
                                                              : MatchSetQueries(available, queries);
  for (size_t i : matched) {
    std::string item;
    // LIST replies carry id 0 (the spec says the id is meaningless there).
    Append32(item, option == kOptListMetaContext ? 0 : ContextWireId(i));
    item += available[i];
    Reply(option, kRepMetaContext, item);
  }
  if (option == kOptSetMetaContext) {
    meta_names_.clear();
    for (size_t i : matched) meta_names_.push_back(available[i]);
    neg_.meta_contexts = std::move(matched);
    meta_export_ = name;
  }
  Reply(option, kRepAck);
}

bool Handshake::MetaContextsStillMatch(const Export& exp, std::string_view name) const {
  if (meta_export_ != name || neg_.meta_contexts.empty()) return true;  // nothing carries over
  auto available = exp.MetaContexts();
  for (size_t k = 0; k < neg_.meta_contexts.size(); ++k) {
    size_t i = neg_.meta_contexts[k];
    if (i >= available.size() || available[i] != meta_names_[k]) return false;
  }
  return true;
}

}  // namespace blocksnap::nbd
