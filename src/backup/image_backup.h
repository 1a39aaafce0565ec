// Disk images into and out of a ChunkStore: an image is cut into fixed 4 MiB chunks, each
// stored once (deduplicated against every backup in the store), and described by a
// FixedIndex; a restore writes the chunks back in order, checking each one.
//
// These read and write raw image files; what reads a running VM's disk (an NBD export of a
// point-in-time view) gives BackupImage its own reader.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backup/chunk_store.h"
#include "backup/fixed_index.h"
#include "core/result.h"

namespace hearth {

struct ImageBackupStats {
  uint64_t chunks = 0;        // in the image
  uint64_t reused = 0;        // already in the store (deduplicated, or unchanged and not read)
  uint64_t unchanged = 0;     // of those, taken from the previous backup without a read
  uint64_t bytes_read = 0;    // from the image
  uint64_t bytes_stored = 0;  // newly written to the store (compressed)
};

// Reads `len` bytes at `offset` of the image (exactly `len`: the image is that long).
using ImageReader = std::function<Result<std::string>(uint64_t offset, size_t len)>;
// Progress lines for a task log ("drive-scsi0: 40% (1.6 GiB of 4.0 GiB), 12 of 30 chunks new").
using BackupLog = std::function<void(const std::string&)>;

// An incremental read: the image's previous backup in the same store and which of its
// chunks may have changed since (a dirty bitmap: a superset of the changes is fine, a subset
// is wrong data). The previous index must describe an image of the same size and chunk size.
struct IncrementalBase {
  const FixedIndex* previous = nullptr;
  const std::vector<bool>* dirty = nullptr;  // one flag per chunk
};

// Backs up an image of `size` bytes read through `read`. `stats` (optional) gets the counts.
// With `base`, a clean chunk is not read: the previous backup's chunk is taken (and touched,
// so a GC running now keeps it); one that is missing from the store is read after all.
// The chunks are durable (ChunkStore::Sync) when it returns.
Result<FixedIndex> BackupImage(ChunkStore& store, uint64_t size, const ImageReader& read, const std::string& label,
                               const BackupLog& log, ImageBackupStats* stats, const IncrementalBase* base = nullptr);
// The same for a raw image file (or a block device) at `path`.
Result<FixedIndex> BackupRawFile(ChunkStore& store, const std::string& path, const std::string& label,
                                 const BackupLog& log, ImageBackupStats* stats);

// Writes the image `index` describes through `write` (offset, bytes) into a volume of at
// least its size that reads as zeros where nothing was written (a new volume): all-zero
// chunks are skipped, recognised by their digest without being read. A chunk that is missing
// or fails its check stops the restore with the chunk's name.
using ImageWriter = std::function<Status(uint64_t offset, std::string_view data)>;
Status RestoreImage(const ChunkStore& store, const FixedIndex& index, const ImageWriter& write,
                    const std::string& label, const BackupLog& log);

// Writes the image `index` describes to the new raw file `path` (it must not exist), sparse
// where chunks are all zeros, and fsyncs it. A chunk that is missing or fails its check stops
// the restore with the chunk's name, and the partial file is removed.
Status RestoreRawFile(const ChunkStore& store, const FixedIndex& index, const std::string& path,
                      const std::string& label, const BackupLog& log);

}  // namespace hearth
