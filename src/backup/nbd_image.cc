#include "backup/nbd_image.h"

#include <libnbd.h>
#include <sys/stat.h>

#include <cerrno>
#include <thread>

namespace hearth {
namespace {

std::string NbdError(const std::string& what) {
  const char* e = nbd_get_error();
  return what + ": " + (e ? e : "unknown NBD error");
}

}  // namespace

Result<std::unique_ptr<NbdImage>> NbdImage::ConnectUnix(const std::string& socket, const std::string& export_name,
                                                        std::chrono::milliseconds timeout, const std::string& bitmap) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  struct stat st {};
  while (::stat(socket.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
    if (std::chrono::steady_clock::now() >= deadline)
      return Fail(Unavailable("NBD server did not start: no socket at " + socket));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // The socket exists from the server's bind(), a moment before its listen(): until then a
  // connect is refused, so that is retried (on a new handle: a failed one is dead).
  std::unique_ptr<NbdImage> img;
  nbd_handle* h = nullptr;
  while (true) {
    h = nbd_create();
    if (!h) return Fail(Internal(NbdError("nbd_create")));
    img.reset(new NbdImage(h));
    if (nbd_set_export_name(h, export_name.c_str()) != 0) return Fail(Internal(NbdError("NBD export name")));
    if (!bitmap.empty()) {
      img->context_ = "qemu:dirty-bitmap:" + bitmap;
      if (nbd_add_meta_context(h, img->context_.c_str()) != 0) return Fail(Internal(NbdError("NBD meta context")));
    }
    if (nbd_connect_unix(h, socket.c_str()) == 0) break;
    bool refused = nbd_get_errno() == ECONNREFUSED;
    if (!refused || std::chrono::steady_clock::now() >= deadline) return Fail(Unavailable(NbdError("NBD connect to " + socket)));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!bitmap.empty() && nbd_can_meta_context(h, img->context_.c_str()) != 1)
    return Fail(FailedPrecondition("the NBD export does not offer the dirty bitmap '" + bitmap + "'"));
  int64_t size = nbd_get_size(h);
  if (size < 0) return Fail(Internal(NbdError("NBD export size")));
  img->size_ = static_cast<uint64_t>(size);
  return img;
}

NbdImage::~NbdImage() {
  if (!h_) return;
  (void)nbd_shutdown(h_, 0);
  nbd_close(h_);
}

Result<std::string> NbdImage::Read(uint64_t offset, size_t len) {
  if (offset > size_ || len > size_ - offset) return Fail(InvalidArgument("NBD read beyond the end of the export"));
  std::string buf(len, '\0');
  // NBD requests are capped (32 MiB by libnbd); chunks are 4 MiB, so one request each.
  constexpr size_t kMaxRequest = 32 << 20;
  for (size_t done = 0; done < len;) {
    size_t n = std::min(kMaxRequest, len - done);
    if (nbd_pread(h_, buf.data() + done, n, offset + done, 0) != 0)
      return Fail(Internal(NbdError("NBD read at offset " + std::to_string(offset + done))));
    done += n;
  }
  return buf;
}

}  // namespace hearth

namespace hearth {

Status NbdImage::Write(uint64_t offset, std::string_view data) {
  if (offset > size_ || data.size() > size_ - offset) return Fail(InvalidArgument("NBD write beyond the end of the export"));
  constexpr size_t kMaxRequest = 32 << 20;
  for (size_t done = 0; done < data.size();) {
    size_t n = std::min(kMaxRequest, data.size() - done);
    if (nbd_pwrite(h_, data.data() + done, n, offset + done, 0) != 0)
      return Fail(Internal(NbdError("NBD write at offset " + std::to_string(offset + done))));
    done += n;
  }
  return Ok();
}

Status NbdImage::Flush() {
  if (nbd_flush(h_, 0) != 0) return Fail(Internal(NbdError("NBD flush")));
  return Ok();
}

}  // namespace hearth

namespace hearth {

Result<std::vector<bool>> NbdImage::DirtyChunks(uint64_t chunk_size) {
  if (context_.empty()) return Fail(FailedPrecondition("no dirty bitmap was asked for at connect"));
  if (chunk_size == 0) return Fail(InvalidArgument("chunk size 0"));
  std::vector<bool> dirty(static_cast<size_t>((size_ + chunk_size - 1) / chunk_size), false);
  struct State {
    const std::string* context;
    std::vector<bool>* dirty;
    uint64_t chunk_size, size, covered;  // covered: the end of the extents seen so far
  };
  // Requests are 32-bit: ask for at most 2 GiB at a time; the server may answer with less.
  constexpr uint64_t kMaxRequest = uint64_t{1} << 31;
  for (uint64_t offset = 0; offset < size_;) {
    State st{&context_, &dirty, chunk_size, size_, offset};
    auto cb = [](void* user, const char* metacontext, uint64_t off, uint32_t* entries, size_t n, int*) -> int {
      auto* s = static_cast<State*>(user);
      if (*s->context != metacontext) return 0;  // another context: not ours to read
      for (size_t i = 0; i + 1 < n; i += 2) {
        uint64_t len = entries[i];
        uint64_t end = std::min(off + len, s->size);
        if ((entries[i + 1] & 1) && end > off)
          for (uint64_t c = off / s->chunk_size; c * s->chunk_size < end; ++c) (*s->dirty)[static_cast<size_t>(c)] = true;
        off = end;
        if (off >= s->size) break;
      }
      s->covered = std::max(s->covered, off);
      return 0;
    };
    uint64_t count = std::min(kMaxRequest, size_ - offset);
    if (nbd_block_status(h_, count, offset, nbd_extent_callback{cb, &st, nullptr}, 0) != 0)
      return Fail(Internal(NbdError("NBD block status at offset " + std::to_string(offset))));
    if (st.covered <= offset) return Fail(Internal("NBD block status made no progress at offset " + std::to_string(offset)));
    offset = st.covered;
  }
  return dirty;
}

}  // namespace hearth
