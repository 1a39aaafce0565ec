// ImageExport: serves one disk image (read-only unless asked) over NBD on a unix socket, through QEMU's
// qemu-storage-daemon, for as long as the object lives. QEMU reads every format a VM disk
// may have (qcow2 with its backing chain for linked clones, raw, vmdk), so a backup reads
// the guest-visible content whatever the storage holds.
//
//   qemu-storage-daemon --blockdev {file, read-only} --blockdev {<format>, read-only}
//       --nbd-server {unix socket} --export {nbd, name "disk", writable false}
//
// Options are passed as JSON (no escaping of paths), never through a shell. The daemon is
// detached from hearth (so it is stopped by the destructor, not by the kernel, if hearth
// dies it keeps serving a read-only image until killed; its pid file is beside the socket).
//
// Thread-safety: none needed (one owner).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "core/result.h"
#include "sys/process.h"

namespace hearth {

class ImageExport {
 public:
  static constexpr const char* kExportName = "disk";
  struct Options {
    // Open an image a running QEMU holds (its lock shared): only for reading an image whose
    // VM is paused, so that what is read is one instant.
    bool force_share = false;
    // Serve it writable (a restore into a new volume).
    bool writable = false;
  };
  // Starts the export of `image` (`format`: raw, qcow2, vmdk) on `socket` (which must not
  // exist; its directory must). Waits until the socket is there, up to `timeout`.
  static Result<std::unique_ptr<ImageExport>> Start(ProcessRunner& runner, const std::string& image,
                                                   const std::string& format, const std::string& socket,
                                                   std::chrono::milliseconds timeout, Options options);
  static Result<std::unique_ptr<ImageExport>> Start(ProcessRunner& runner, const std::string& image,
                                                   const std::string& format, const std::string& socket,
                                                   std::chrono::milliseconds timeout) {
    return Start(runner, image, format, socket, timeout, Options{});
  }
  // After a crash: stops the exports whose sockets in `dir` start with `prefix` (their pid
  // files name them; a pid is only signalled if it still is a qemu-storage-daemon serving
  // that socket) and removes their files. Returns how many were stopped.
  static int StopStale(const std::string& dir, const std::string& prefix);
  ~ImageExport();
  ImageExport(const ImageExport&) = delete;
  ImageExport& operator=(const ImageExport&) = delete;
  const std::string& socket() const { return socket_; }

 private:
  ImageExport(int pid, std::string socket, std::string log) : pid_(pid), socket_(std::move(socket)), log_(std::move(log)) {}
  int pid_;
  std::string socket_, log_;
};

}  // namespace hearth
