// NbdImage: a disk read through NBD with Debian's libnbd: an export of qemu-storage-daemon
// (ImageExport: a stopped VM's image in any format QEMU reads) or, later, of a running QEMU
// (a point-in-time view). Reads are exact: `Read` returns `len` bytes or an error.
//
// Thread-safety: one thread at a time per object.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"

struct nbd_handle;

namespace hearth {

class NbdImage {
 public:
  // Connects to export `export_name` on the unix socket `socket`, waiting up to `timeout`
  // for the socket to appear (a server that is still starting).
  // `bitmap`: a dirty bitmap the export carries, asked for as the meta context
  // "qemu:dirty-bitmap:<bitmap>" (DirtyChunks reads it); kFailedPrecondition if the server
  // does not offer it.
  static Result<std::unique_ptr<NbdImage>> ConnectUnix(const std::string& socket, const std::string& export_name,
                                                       std::chrono::milliseconds timeout,
                                                       const std::string& bitmap = "");
  ~NbdImage();
  NbdImage(const NbdImage&) = delete;
  NbdImage& operator=(const NbdImage&) = delete;

  uint64_t size() const { return size_; }
  Result<std::string> Read(uint64_t offset, size_t len);
  // Writes `data` at `offset` (a writable export); Flush makes it durable on the server.
  Status Write(uint64_t offset, std::string_view data);
  Status Flush();
  // Which `chunk_size` pieces of the image the bitmap marks dirty (any dirty byte in it), in
  // order: ceil(size / chunk_size) flags. Read with NBD block status on the bitmap's context
  // (bit 0 of an extent's flags: dirty), looping until the whole image is covered.
  Result<std::vector<bool>> DirtyChunks(uint64_t chunk_size);

 private:
  explicit NbdImage(nbd_handle* h) : h_(h) {}
  nbd_handle* h_;
  uint64_t size_ = 0;
  std::string context_;  // "qemu:dirty-bitmap:<name>", or ""
};

}  // namespace hearth
