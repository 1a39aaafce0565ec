#include "state/sqlite/testing/power_cut_vfs.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace hearth {
namespace {

// What SQLite allocates for each open file (szOsFile bytes): this header, then the default
// VFS's own file object.
struct ShimFile {
  sqlite3_file base;   // must come first: SQLite sees only this
  sqlite3_file* real;  // the wrapped file, just after this struct
  // The tracked path, or nullptr for files deleted on close (nothing of them survives a
  // power cut anyway). SQLite keeps the name valid until xClose.
  const char* path;
};
static_assert(sizeof(ShimFile) % 8 == 0, "the wrapped file must stay 8-byte aligned");

sqlite3_vfs* g_real = nullptr;  // the default VFS at Install(); set once, before registering
sqlite3_vfs* g_shim = nullptr;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "PowerCutVfs: %s\n", what.c_str());
  std::abort();
}

ShimFile* Of(sqlite3_file* file) { return reinterpret_cast<ShimFile*>(file); }
sqlite3_file* Real(sqlite3_file* file) { return Of(file)->real; }

}  // namespace

// The sqlite3_vfs and sqlite3_io_methods callbacks. Those that change a file count as an
// operation, fail once the power is off, and log what they overwrite; the rest pass through.
class PowerCutShim {
 public:
  static PowerCutVfs& Vfs() {
    static PowerCutVfs vfs;
    return vfs;
  }

  static int Open(sqlite3_vfs*, const char* name, sqlite3_file* file, int flags, int* out_flags) {
    ShimFile* f = Of(file);
    f->base.pMethods = nullptr;  // SQLite calls xClose only if the open succeeded
    f->real = reinterpret_cast<sqlite3_file*>(f + 1);
    f->path = name && !(flags & SQLITE_OPEN_DELETEONCLOSE) ? name : nullptr;
    int rc = g_real->xOpen(g_real, name, f->real, flags, out_flags);
    if (rc != SQLITE_OK) return rc;
    f->base.pMethods = &kMethods;
    std::lock_guard lock(Vfs().mu_);
    ++Vfs().open_files_;
    return SQLITE_OK;
  }

  static int Delete(sqlite3_vfs*, const char* path, int sync_dir) {
    PowerCutVfs& vfs = Vfs();
    std::lock_guard lock(vfs.mu_);
    if (!vfs.PowerOn()) return SQLITE_IOERR_DELETE;
    int rc = g_real->xDelete(g_real, path, sync_dir);
    if (rc == SQLITE_OK) vfs.files_.erase(path);  // directory entries count as durable at once
    return rc;
  }

  static int Close(sqlite3_file* file) {
    int rc = Real(file)->pMethods->xClose(Real(file));
    std::lock_guard lock(Vfs().mu_);
    --Vfs().open_files_;
    return rc;
  }

  static int Write(sqlite3_file* file, const void* buf, int n, sqlite3_int64 offset) {
    PowerCutVfs& vfs = Vfs();
    std::lock_guard lock(vfs.mu_);
    if (!vfs.PowerOn()) return SQLITE_IOERR_WRITE;
    SaveOldBytes(Of(file), offset, offset + n);
    return Real(file)->pMethods->xWrite(Real(file), buf, n, offset);
  }

  static int Truncate(sqlite3_file* file, sqlite3_int64 size) {
    PowerCutVfs& vfs = Vfs();
    std::lock_guard lock(vfs.mu_);
    if (!vfs.PowerOn()) return SQLITE_IOERR_TRUNCATE;
    SaveOldBytes(Of(file), size, std::numeric_limits<int64_t>::max());
    return Real(file)->pMethods->xTruncate(Real(file), size);
  }

  static int Sync(sqlite3_file* file, int /*flags*/) {
    PowerCutVfs& vfs = Vfs();
    std::lock_guard lock(vfs.mu_);
    if (!vfs.PowerOn()) return SQLITE_IOERR_FSYNC;
    // Recorded, not performed: the power never really fails, so what an fsync makes durable
    // is what this VFS says, and skipping the real one makes a test run several times faster.
    // fsync makes the whole file durable, whichever descriptor wrote it.
    if (Of(file)->path) vfs.files_.erase(Of(file)->path);
    return SQLITE_OK;
  }

  static const sqlite3_io_methods kMethods;

 private:
  // Before bytes [begin, end) of a tracked file change, keeps those of them the disk holds
  // durably: below both the synced size and the current size (what lies between the two
  // was saved when a truncation removed it). Requires Vfs().mu_.
  static void SaveOldBytes(ShimFile* f, int64_t begin, int64_t end) {
    if (!f->path) return;
    sqlite3_int64 size = 0;
    if (f->real->pMethods->xFileSize(f->real, &size) != SQLITE_OK) Die(std::string("cannot stat ") + f->path);
    auto [it, first] = Vfs().files_.try_emplace(f->path);
    // The first change since the last sync (or Reset): the file as it is now is durable.
    if (first) it->second.synced_size = size;
    end = std::min({end, it->second.synced_size, static_cast<int64_t>(size)});
    if (begin >= end) return;
    // Every change is logged, not only the first to a region: restoring newest first ends
    // with the oldest bytes, which are the synced ones.
    std::string old(end - begin, '\0');
    if (f->real->pMethods->xRead(f->real, old.data(), static_cast<int>(old.size()), begin) != SQLITE_OK)
      Die(std::string("cannot read ") + f->path);
    it->second.undo.emplace_back(begin, std::move(old));
  }
};

const sqlite3_io_methods PowerCutShim::kMethods = {
    3,  // iVersion: the unix VFS's files support shared memory and mmap
    &PowerCutShim::Close,
    [](sqlite3_file* f, void* buf, int n, sqlite3_int64 off) { return Real(f)->pMethods->xRead(Real(f), buf, n, off); },
    &PowerCutShim::Write,
    &PowerCutShim::Truncate,
    &PowerCutShim::Sync,
    [](sqlite3_file* f, sqlite3_int64* size) { return Real(f)->pMethods->xFileSize(Real(f), size); },
    [](sqlite3_file* f, int lock) { return Real(f)->pMethods->xLock(Real(f), lock); },
    [](sqlite3_file* f, int lock) { return Real(f)->pMethods->xUnlock(Real(f), lock); },
    [](sqlite3_file* f, int* out) { return Real(f)->pMethods->xCheckReservedLock(Real(f), out); },
    [](sqlite3_file* f, int op, void* arg) { return Real(f)->pMethods->xFileControl(Real(f), op, arg); },
    [](sqlite3_file* f) { return Real(f)->pMethods->xSectorSize(Real(f)); },
    [](sqlite3_file* f) { return Real(f)->pMethods->xDeviceCharacteristics(Real(f)); },
    [](sqlite3_file* f, int region, int size, int extend, void volatile** out) {
      return Real(f)->pMethods->xShmMap(Real(f), region, size, extend, out);
    },
    [](sqlite3_file* f, int offset, int n, int flags) {
      return Real(f)->pMethods->xShmLock(Real(f), offset, n, flags);
    },
    [](sqlite3_file* f) { Real(f)->pMethods->xShmBarrier(Real(f)); },
    [](sqlite3_file* f, int delete_flag) { return Real(f)->pMethods->xShmUnmap(Real(f), delete_flag); },
    [](sqlite3_file* f, sqlite3_int64 off, int n, void** out) {
      return Real(f)->pMethods->xFetch(Real(f), off, n, out);
    },
    [](sqlite3_file* f, sqlite3_int64 off, void* p) { return Real(f)->pMethods->xUnfetch(Real(f), off, p); },
};

PowerCutVfs& PowerCutVfs::Install() {
  static sqlite3_vfs* shim = [] {
    g_real = sqlite3_vfs_find(nullptr);
    if (!g_real) Die("SQLite has no default VFS");
    auto* v = new sqlite3_vfs{};  // lives as long as the process: SQLite may use it until exit
    v->iVersion = 2;              // up to xCurrentTimeInt64; the system-call hooks are not forwarded
    v->szOsFile = static_cast<int>(sizeof(ShimFile)) + g_real->szOsFile;
    v->mxPathname = g_real->mxPathname;
    v->zName = "hearth-power-cut";
    v->xOpen = &PowerCutShim::Open;
    v->xDelete = &PowerCutShim::Delete;
    v->xAccess = [](sqlite3_vfs*, const char* path, int flags, int* out) {
      return g_real->xAccess(g_real, path, flags, out);
    };
    v->xFullPathname = [](sqlite3_vfs*, const char* path, int n, char* out) {
      return g_real->xFullPathname(g_real, path, n, out);
    };
    v->xDlOpen = [](sqlite3_vfs*, const char* path) { return g_real->xDlOpen(g_real, path); };
    v->xDlError = [](sqlite3_vfs*, int n, char* out) { g_real->xDlError(g_real, n, out); };
    v->xDlSym = [](sqlite3_vfs*, void* lib, const char* sym) { return g_real->xDlSym(g_real, lib, sym); };
    v->xDlClose = [](sqlite3_vfs*, void* lib) { g_real->xDlClose(g_real, lib); };
    v->xRandomness = [](sqlite3_vfs*, int n, char* out) { return g_real->xRandomness(g_real, n, out); };
    v->xSleep = [](sqlite3_vfs*, int micros) { return g_real->xSleep(g_real, micros); };
    v->xCurrentTime = [](sqlite3_vfs*, double* out) { return g_real->xCurrentTime(g_real, out); };
    v->xGetLastError = [](sqlite3_vfs*, int n, char* out) { return g_real->xGetLastError(g_real, n, out); };
    v->xCurrentTimeInt64 = [](sqlite3_vfs*, sqlite3_int64* out) { return g_real->xCurrentTimeInt64(g_real, out); };
    return v;
  }();
  g_shim = shim;
  if (sqlite3_vfs_register(shim, /*makeDflt=*/1) != SQLITE_OK) Die("cannot register the VFS");
  return PowerCutShim::Vfs();
}

void PowerCutVfs::Uninstall() {
  if (g_shim) sqlite3_vfs_register(g_real, /*makeDflt=*/1);
}

void PowerCutVfs::Reset() {
  std::lock_guard lock(mu_);
  files_.clear();
  ops_ = 0;
  cut_at_ = std::numeric_limits<uint64_t>::max();
}

void PowerCutVfs::ArmCutAt(uint64_t op) {
  std::lock_guard lock(mu_);
  cut_at_ = op;
}

uint64_t PowerCutVfs::ops() const {
  std::lock_guard lock(mu_);
  return ops_;
}

bool PowerCutVfs::cut() const {
  std::lock_guard lock(mu_);
  return ops_ > cut_at_;
}

bool PowerCutVfs::PowerOn() { return ops_++ < cut_at_; }

void PowerCutVfs::PowerCut() {
  {
    std::lock_guard lock(mu_);
    if (open_files_ != 0) Die(std::to_string(open_files_) + " files are still open");
    for (const auto& [path, unsynced] : files_) {
      int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0) Die("open " + path + ": " + std::strerror(errno));
      for (auto it = unsynced.undo.rbegin(); it != unsynced.undo.rend(); ++it) {
        const auto& [offset, bytes] = *it;
        if (::pwrite(fd, bytes.data(), bytes.size(), offset) != static_cast<ssize_t>(bytes.size()))
          Die("pwrite " + path + ": " + std::strerror(errno));
      }
      if (::ftruncate(fd, unsynced.synced_size) != 0) Die("ftruncate " + path + ": " + std::strerror(errno));
      ::close(fd);
    }
  }
  Reset();
}

}  // namespace hearth
