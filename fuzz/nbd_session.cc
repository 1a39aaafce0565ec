// What a live restore's NBD server reads from the restored VM's QEMU (a hostile peer once the
// guest escaped into it): the handshake, options and requests. Invariants: the session ends
// (no hang, no crash) on any bytes; every reply it writes starts with one of the protocol's
// three magics; the total it writes is bounded by what the requests could ask for.
#include <cstring>

#include "backup/nbd_session.h"
#include "fuzz_common.h"

using namespace hearth;

namespace {

class Bytes : public NbdStream {
 public:
  Bytes(const uint8_t* d, size_t n) : d_(d), n_(n) {}
  Status ReadExact(void* buf, size_t len) override {
    if (n_ - pos_ < len) return Fail(Unavailable("end of input"));
    std::memcpy(buf, d_ + pos_, len);
    pos_ += len;
    return Ok();
  }
  Status WriteAll(const void*, size_t len) override {
    written += len;
    return Ok();
  }
  size_t written = 0;

 private:
  const uint8_t* d_;
  size_t n_;
  size_t pos_ = 0;
};

class Image : public NbdExport {
 public:
  uint64_t size() const override { return 3 << 20; }
  Status Read(uint64_t offset, uint32_t len, std::string* out) override {
    FUZZ_CHECK(offset + len <= size(), "reads stay within the export");
    if (offset % 7 == 3) return Fail(Internal("chunk is corrupt"));  // the EIO path
    out->append(len, 'x');
    return Ok();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const NbdExportTable exports{{"drive-scsi0", std::make_shared<Image>()}, {"", std::make_shared<Image>()}};
  Bytes io(data, size);
  (void)ServeNbdSession(io, exports, [](const std::string&) {});
  // Each 28-byte request gets at most 16 bytes of reply plus 3 MiB of data; each 16-byte
  // option at most a few replies (LIST: one per export).
  FUZZ_CHECK(io.written <= 18 + (size / 16 + 1) * 200 + (size / 28 + 1) * (16 + (3u << 20)), "replies are bounded");
  return 0;
}
