// Reading snapshots back: dump to a sparse image, verify, read one chunk, diff two versions,
// and the rescan that rebuilds a volume's dirty set when its durable state is unusable.
#pragma once

#include <atomic>
#include <functional>

#include <cstdint>
#include <string>
#include <vector>

#include "snapshot/snapshot_record.h"
#include "store/block_map.h"
#include "store/chunk_store.h"
#include "util/status.h"
#include "volume/dirty_bitmap.h"
#include "volume/volume.h"

namespace blocksnap {

// Writes the snapshot as a raw image of its logical size to `fd` (the caller's; not closed),
// by what fd is:
// - a regular file (not O_APPEND): its old contents go (ftruncate to 0, then to the
//   snapshot's size) and only the chunks with data are written, at their offsets (pwrite):
//   zero and never-written chunks stay holes. fsync'd. On failure the file is emptied.
// - a block device: every byte at its offset from 0, zeros included; fsync'd.
//   InvalidArgument when the device is smaller than the snapshot.
// - anything else (pipe, socket, character device, O_APPEND file): every byte in order with
//   write(), from the fd's position, zeros included. A failure midway leaves what was sent.
// InvalidArgument when fd is not open for writing (O_RDONLY, O_PATH). Every chunk is
// verified; a bad one fails the dump with kCorruption naming the chunk.
// A stream is written only as far as it has room, and while it has none the dump checks
// `stop` (when given) every 200 ms: once set, it fails with Busy. So a reader that stalls
// cannot hold the dump, and with it the daemon's shutdown, forever. `still_valid` (when
// given) runs once the chunks are written, or have failed to be: its error replaces the
// outcome and fails the dump like any other.
Status DumpSnapshot(BlockMap& map, ChunkStore& store, const SnapshotRecord& snap, int fd,
                    const std::atomic<bool>* stop = nullptr,
                    const std::function<Status()>& still_valid = nullptr);

struct BadChunk {
  uint64_t chunk = 0;   // index in the volume
  std::string hash;     // hex
  std::string problem;  // the store's message
};
struct VerifyReport {
  uint64_t chunks_checked = 0;
  std::vector<BadChunk> bad;
  bool ok() const { return bad.empty(); }
};
// Re-reads and re-hashes every stored chunk the snapshot references. Bad chunks (corrupt,
// missing, or unreadable: an I/O error such as a pack file gone) are listed in
// the report; the Status is an error only when the check itself could not run.
Result<VerifyReport> VerifySnapshot(BlockMap& map, ChunkStore& store, const SnapshotRecord& snap);

// The snapshot's chunk `chunk` (chunk_size bytes, zeros included) into *out, verified.
Status ReadSnapshotChunk(BlockMap& map, ChunkStore& store, const SnapshotRecord& snap,
                         uint64_t chunk, std::string* out);

// Bytes [offset, offset + length) of the snapshot into out (length bytes), every chunk
// verified; InvalidArgument past the snapshot's size. `scratch` is reused between calls.
Status ReadSnapshotRange(BlockMap& map, ChunkStore& store, const SnapshotRecord& snap,
                         uint64_t offset, uint64_t length, char* out, std::string* scratch);

// The chunks whose contents differ between versions `from` and `to` (from < to) of a volume,
// ascending (EBS ListChangedBlocks).
Result<std::vector<uint64_t>> ChangedChunks(BlockMap& map, uint64_t volume, uint64_t from,
                                            uint64_t to);

struct RescanResult {
  uint64_t chunks_read = 0;  // chunks with data in the file (holes are skipped)
  uint64_t dirty = 0;
  uint64_t not_local = 0;  // chunks of a hydrating volume taken as unchanged without a read
};
// Hashes every chunk of the volume's file and compares it with the block map as of its
// newest entries (the base of its next incremental snapshot); sets the differing chunks in
// `dirty` (sized for the volume). Holes in the sparse file are skipped with SEEK_DATA.
// Chunks set in `not_local` (a restored volume still hydrating: Hydration::LoadNotLocal)
// are not in the file yet and equal their entry by construction: never dirty.
Result<RescanResult> RescanVolume(BlockMap& map, const Volume& volume, AtomicBitmap& dirty,
                                  const AtomicBitmap* not_local = nullptr);

}  // namespace blocksnap
