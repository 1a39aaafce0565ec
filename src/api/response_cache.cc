#include "api/response_cache.h"

#include <zlib.h>

namespace hearth {

std::string GzipCompress(const std::string& data) {
  z_stream zs{};
  // windowBits 15 + 16: a gzip wrapper, as Content-Encoding: gzip wants.
  if (deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return "";
  std::string out(deflateBound(&zs, data.size()), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) return "";
  out.resize(zs.total_out);
  return out;
}

}  // namespace hearth
