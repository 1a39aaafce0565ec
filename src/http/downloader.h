// Streaming HTTP/HTTPS downloads to a file (storage download-url). Follows up to 5
// redirects, verifies certificates unless told not to, reports progress, and can be
// cancelled. Never holds the body in memory.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/result.h"

namespace hearth {

struct DownloadOptions {
  bool verify_certificates = true;
  uint64_t max_bytes = uint64_t{64} << 30;
  std::function<void(uint64_t done, uint64_t total)> progress;  // total 0 if unknown
  std::function<bool()> cancelled;  // polled between chunks
};

struct UrlParts {
  bool https = false;
  std::string host, port, target;
};
Result<UrlParts> ParseHttpUrl(const std::string& url);

struct UrlMetadata {
  std::string filename;  // from Content-Disposition, else the URL's last path segment
  std::string mimetype;
  uint64_t size = 0;     // 0 if the server does not say
};
// HEAD request (redirects followed), as PVE's query-url-metadata.
Result<UrlMetadata> QueryUrlMetadata(const std::string& url, bool verify_certificates);

// Downloads `url` into `dest` (created; removed again on failure). Returns the byte count.
Result<uint64_t> DownloadToFile(const std::string& url, const std::string& dest, const DownloadOptions& options);

}  // namespace hearth
