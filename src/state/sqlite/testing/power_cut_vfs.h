// PowerCutVfs: a SQLite VFS for tests that loses power on command, the way SQLite's own
// crash tests do. It wraps the default VFS (unix) and passes every call through, except:
//
// - It numbers the mutating file operations (xWrite, xTruncate, xSync, xDelete) from 0.
//   Armed with ArmCutAt(n), operation n and every later one fail with SQLITE_IOERR_*, as if
//   the machine had died there: nothing more reaches the disk. Reads keep working.
// - Per file path, it keeps what an fsync has not yet made durable: the size at the last
//   successful xSync and, before each overwrite or truncation of bytes below that size, the
//   old bytes (an undo log).
// - PowerCut(), called once every connection is closed, makes the files look like the disk
//   after a power cut: for each file it restores the saved bytes, newest first, and
//   truncates it to its size at the last sync.
// - xSync is recorded but does not reach the disk: since the power never really fails,
//   durability is what this VFS models, and real fsyncs would only make tests slow.
//
// What it models: a power cut at any point loses every write that was not fsynced, per
// file, with fsync covering the whole file whichever descriptor wrote (as on Linux).
// What it does not: directory entries (creating and deleting files is durable at once),
// torn sectors, and unsynced writes that partly survive, in any order.
//
// Why that is enough for WAL mode: SQLite's correctness across a crash rests on fsync
// ordering, and the unsynced writes that partly survive are ones its format already
// rejects. Commits append frames to the -wal file whose checksums chain from its header,
// so recovery stops at the first frame that did not fully reach the disk, as it does when
// none did. The database file is written only by a checkpoint, which syncs the -wal file
// first and the database after, and the -wal file is reused (restarted) only after that,
// so a checkpoint cut halfway is redone from the -wal file. Losing everything unsynced is
// thus the case that tests whether an acknowledged commit was synced. Directory entries:
// the unix VFS fsyncs the directory at a new -wal file's first sync, and the database and
// its -wal file share that directory. The -shm file is not tracked: the first connection
// after a restart rebuilds it from the -wal file.
//
// Shapes: one instance per process, registered by Install(). Every method, and the VFS
// itself, may be used from any thread: one mutex guards the counters and undo logs and
// serializes the mutating file operations (fine for tests). The VFS must stay installed
// while connections opened through it are open.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace hearth {

class PowerCutVfs {
 public:
  // Registers the VFS as SQLite's default (once per process; it stays registered) and
  // returns it. Connections opened afterwards without a VFS name go through it.
  static PowerCutVfs& Install();
  // Makes the VFS that was the default before Install() the default again; connections
  // already open through this one keep using it.
  static void Uninstall();

  // Forgets counts, the armed cut and what was unsynced, as if every file had just been
  // synced. Touches no file.
  void Reset();
  // Mutating operations numbered `op` and later fail (numbering from the last Reset() or
  // PowerCut()). The maximum value disarms.
  void ArmCutAt(uint64_t op);
  // Mutating operations attempted so far, including refused ones.
  uint64_t ops() const;
  // Whether an operation has been refused: the power is off.
  bool cut() const;
  // Rolls every file back to what was synced (see above), then Reset()s: the power comes
  // back. Requires that no file opened through the VFS is still open; aborts otherwise, or
  // if a file cannot be restored.
  void PowerCut();

 private:
  PowerCutVfs() = default;
  friend class PowerCutShim;  // the C callbacks in the .cc

  struct Unsynced {
    int64_t synced_size = 0;
    std::vector<std::pair<int64_t, std::string>> undo;  // (offset, old bytes), oldest first
  };
  // Counts one mutating operation; false if the power is off and it must fail.
  bool PowerOn();  // requires mu_

  mutable std::mutex mu_;
  uint64_t ops_ = 0;                                       // GUARDED_BY(mu_)
  uint64_t cut_at_ = std::numeric_limits<uint64_t>::max();  // GUARDED_BY(mu_)
  std::map<std::string, Unsynced> files_;                  // GUARDED_BY(mu_): only files written since a sync
  int open_files_ = 0;                                     // GUARDED_BY(mu_)
};

}  // namespace hearth
