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

#include "core/result.h"

struct nbd_handle;

namespace hearth {

class NbdImage {
 public:
  // Connects to export `export_name` on the unix socket `socket`, waiting up to `timeout`
  // for the socket to appear (a server that is still starting).
  static Result<std::unique_ptr<NbdImage>> ConnectUnix(const std::string& socket, const std::string& export_name,
                                                       std::chrono::milliseconds timeout);
  ~NbdImage();
  NbdImage(const NbdImage&) = delete;
  NbdImage& operator=(const NbdImage&) = delete;

  uint64_t size() const { return size_; }
  Result<std::string> Read(uint64_t offset, size_t len);
  // Writes `data` at `offset` (a writable export); Flush makes it durable on the server.
  Status Write(uint64_t offset, std::string_view data);
  Status Flush();

 private:
  explicit NbdImage(nbd_handle* h) : h_(h) {}
  nbd_handle* h_;
  uint64_t size_ = 0;
};

}  // namespace hearth
