// TZif parsing (RFC 8536): versions 1, 2 and 3 (and 4, which only adds leap-second rules we
// reject anyway). For v2+ files the 64-bit second block and the POSIX TZ footer are used.
#include <cstring>

#include "policy/time_zone.h"

namespace blocksnap::policy {

class TzifParser {
 public:
  explicit TzifParser(std::string_view bytes) : b_(bytes) {}

  Expected<std::shared_ptr<const TimeZone>> Parse(std::string name) {
    Header h;
    if (!ReadHeader(&h)) return Bad("bad TZif header");
    if (h.version >= 2) {
      // Skip the v1 block; the v2+ block after it repeats the data with 64-bit times.
      size_t skip =
          h.timecnt * 5 + h.typecnt * 6 + h.charcnt + h.leapcnt * 8 + h.isstdcnt + h.isutcnt;
      if (!Skip(skip) || !ReadHeader(&h)) return Bad("bad TZif v2+ header");
    }
    auto tz = std::make_shared<TimeZone>(TimeZone::Key{});
    tz->name_ = std::move(name);
    if (h.leapcnt != 0) return Bad("leap-second (\"right/\") zones are not supported");
    if (h.typecnt == 0 || h.typecnt > 256 || h.charcnt == 0) return Bad("no local time types");
    const size_t time_size = h.version >= 2 ? 8 : 4;
    const size_t data =
        h.timecnt * time_size + h.timecnt + h.typecnt * 6 + h.charcnt + h.isstdcnt + h.isutcnt;
    if (b_.size() - pos_ < data) return Bad("truncated TZif data");
    std::vector<int64_t> times(h.timecnt);
    for (auto& t : times) t = time_size == 8 ? int64_t(Be(8)) : int64_t(int32_t(Be(4)));
    for (size_t i = 0; i < h.timecnt; ++i) {
      size_t type = static_cast<unsigned char>(b_[pos_++]);
      if (type >= h.typecnt) return Bad("transition refers to a missing local time type");
      if (i > 0 && times[i] <= times[i - 1]) return Bad("transitions out of order");
      tz->transitions_.push_back({times[i], type});
    }
    std::vector<size_t> abbr_index;
    for (size_t i = 0; i < h.typecnt; ++i) {
      ZoneType t;
      t.utc_offset = int32_t(Be(4));
      t.is_dst = b_[pos_++] != 0;
      abbr_index.push_back(static_cast<unsigned char>(b_[pos_++]));
      if (t.utc_offset <= -89999 || t.utc_offset >= 93600) return Bad("offset out of range");
      tz->types_.push_back(t);
    }
    std::string_view chars = b_.substr(pos_, h.charcnt);
    for (size_t i = 0; i < h.typecnt; ++i) {
      if (abbr_index[i] >= chars.size()) return Bad("abbreviation index out of range");
      std::string_view a = chars.substr(abbr_index[i]);
      tz->types_[i].abbr = std::string(a.substr(0, a.find('\0')));
    }
    pos_ += h.charcnt + h.isstdcnt + h.isutcnt;
    if (h.version >= 2) {
      // Footer: "\n" TZ-string "\n". An empty TZ string means "no rule".
      if (pos_ >= b_.size() || b_[pos_] != '\n') return Bad("missing TZif footer");
      size_t end = b_.find('\n', pos_ + 1);
      if (end == std::string_view::npos) return Bad("unterminated TZif footer");
      std::string_view footer = b_.substr(pos_ + 1, end - pos_ - 1);
      if (!footer.empty()) {
        auto rule = ParsePosixTz(footer);
        if (!rule) return rule.error();
        tz->rule_ = std::move(rule).value();
      }
    }
    return std::shared_ptr<const TimeZone>(tz);
  }

 private:
  struct Header {
    int version = 0;
    size_t isutcnt = 0, isstdcnt = 0, leapcnt = 0, timecnt = 0, typecnt = 0, charcnt = 0;
  };

  static Error Bad(const char* what) { return MakeError(what); }

  bool Skip(size_t n) {
    if (b_.size() - pos_ < n) return false;
    pos_ += n;
    return true;
  }

  uint64_t Be(size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(b_[pos_++]);
    return v;
  }

  bool ReadHeader(Header* h) {
    if (b_.size() - pos_ < 44 || b_.substr(pos_, 4) != "TZif") return false;
    char v = b_[pos_ + 4];
    if (v == '\0') {
      h->version = 1;
    } else if (v >= '2' && v <= '4') {
      h->version = v - '0';
    } else {
      return false;
    }
    pos_ += 20;
    size_t* counts[] = {&h->isutcnt, &h->isstdcnt, &h->leapcnt,
                        &h->timecnt, &h->typecnt,  &h->charcnt};
    for (size_t* c : counts) {
      *c = Be(4);
      if (*c > 100000) return false;
    }
    if ((h->isutcnt != 0 && h->isutcnt != h->typecnt) ||
        (h->isstdcnt != 0 && h->isstdcnt != h->typecnt)) {
      return false;
    }
    return true;
  }

  std::string_view b_;
  size_t pos_ = 0;
};

Expected<std::shared_ptr<const TimeZone>> TimeZone::FromTzif(std::string name,
                                                             std::string_view bytes) {
  return TzifParser(bytes).Parse(std::move(name));
}

}  // namespace blocksnap::policy
