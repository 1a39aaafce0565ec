#include "sys/file_system.h"

#include "sys/random_source.h"

namespace hearth {

std::string ParentDir(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

Status WriteFileAtomic(FileSystem& fs, const std::string& path, std::string_view content, int perms) {
  std::string tmp = path + ".tmp." + RandomHex(16);
  HEARTH_ASSIGN_OR_RETURN(auto file, fs.Open(tmp, OpenMode::kCreateNew, perms));
  Status st = file->Append(content);
  if (st) st = file->Sync();
  if (Status closed = file->Close(); st && !closed) st = closed;
  if (st) st = fs.Rename(tmp, path);
  if (!st) {
    (void)fs.Remove(tmp);
    return st;
  }
  // Without this a power cut could undo the rename (and with it the new content) even
  // though we returned Ok.
  return fs.SyncDir(ParentDir(path));
}

}  // namespace hearth
