#include "volume/dirty_state.h"

#include <cstring>
#include <memory>
#include <set>

#include "store/big_endian.h"

namespace blocksnap {
namespace {

constexpr std::string_view kMagic = "BSDIRTY1";

std::string Prefix(uint64_t volume, char kind) {
  std::string k;
  PutBe64(k, volume);
  k.push_back(kind);
  return k;
}

std::string GenPrefix(uint64_t volume, uint64_t generation) {
  std::string k = Prefix(volume, 'W');
  PutBe64(k, generation);
  return k;
}

}  // namespace

std::string DirtyHeaderKey(uint64_t volume) {
  return Prefix(volume, 'H');
}

std::string DirtyWordKey(uint64_t volume, uint64_t generation, uint64_t word) {
  std::string k = GenPrefix(volume, generation);
  PutBe64(k, word);
  return k;
}

Result<DirtyLoad> LoadDirtyState(Db& db, uint64_t volume, AtomicBitmap& out) {
  DirtyLoad load;
  BS_ASSIGN_OR_RETURN(auto header, db.Get(Cf::kDirty, DirtyHeaderKey(volume)));
  if (!header) {
    load.reason = "no durable dirty state";
    return load;
  }
  if (header->size() != kMagic.size() + 8 || !std::string_view(*header).starts_with(kMagic)) {
    load.reason = "dirty state header is damaged";
    return load;
  }
  uint64_t chunks = GetBe64(std::string_view(*header).substr(kMagic.size()));
  if (chunks != out.size()) {
    load.reason = "dirty state is for " + std::to_string(chunks) + " chunks, the volume has " +
                  std::to_string(out.size());
    return load;
  }
  std::set<uint64_t> gens;
  std::string damaged;
  BS_RETURN_IF_ERROR(
      db.ScanPrefix(Cf::kDirty, Prefix(volume, 'W'), [&](std::string_view k, std::string_view v) {
        if (k.size() != 25 || v.size() != 8) {
          damaged = "dirty state word has a malformed key or value";
          return false;
        }
        uint64_t gen = GetBe64(k.substr(9, 8));
        uint64_t word = GetBe64(k.substr(17, 8));
        if (word >= out.words()) {
          damaged = "dirty state word " + std::to_string(word) + " is beyond the volume";
          return false;
        }
        uint64_t bits;
        std::memcpy(&bits, v.data(), 8);
        out.OrWord(word, bits);
        gens.insert(gen);
        return true;
      }));
  if (!damaged.empty()) {
    load.reason = damaged;
    return load;
  }
  load.usable = true;
  load.generations = gens.size();
  load.max_generation = gens.empty() ? 0 : *gens.rbegin();
  return load;
}

void StageDirtyHeader(Db& db, rocksdb::WriteBatch& b, uint64_t volume, uint64_t chunk_count) {
  std::string v(kMagic);
  PutBe64(v, chunk_count);
  b.Put(db.cf(Cf::kDirty), DirtyHeaderKey(volume), v);
}

void StageDirtyWord(Db& db, rocksdb::WriteBatch& b, uint64_t volume, uint64_t generation,
                    uint64_t word, uint64_t bits) {
  char v[8];
  std::memcpy(v, &bits, 8);
  b.Put(db.cf(Cf::kDirty), DirtyWordKey(volume, generation, word), rocksdb::Slice(v, 8));
}

void StageDeleteGeneration(Db& db, rocksdb::WriteBatch& b, uint64_t volume, uint64_t generation) {
  b.DeleteRange(db.cf(Cf::kDirty), GenPrefix(volume, generation),
                GenPrefix(volume, generation + 1));
}

void StageDeleteGenerationsBelow(Db& db, rocksdb::WriteBatch& b, uint64_t volume, uint64_t below) {
  b.DeleteRange(db.cf(Cf::kDirty), GenPrefix(volume, 0), GenPrefix(volume, below));
}

void StageDeleteDirtyState(Db& db, rocksdb::WriteBatch& b, uint64_t volume) {
  std::string begin;
  PutBe64(begin, volume);
  std::string end;
  PutBe64(end, volume + 1);
  if (volume == UINT64_MAX) end = std::string(9, '\xff');
  b.DeleteRange(db.cf(Cf::kDirty), begin, end);
}

}  // namespace blocksnap
