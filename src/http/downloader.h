// Outbound HTTP/HTTPS for download-url and query-url-metadata, on libcurl.
//
// Why libcurl and not Beast: fetching arbitrary URLs from the internet (redirects across
// hosts, chunked bodies, proxies, DNS without blocking forever) is not what hearth exists
// for, and curl does it with deadlines on every phase. Every call here has a connect
// deadline, a stall deadline (no bytes for that long ends the transfer) and optionally a
// total one, and polls `cancelled` at least every second, including while it connects.
// Only http:// and https:// are followed, also across redirects (at most 5).
//
// Thread-safe: each call uses its own handle. Blocking: call from a task or worker thread,
// never from an HTTP I/O thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "core/result.h"

namespace hearth {

struct DownloadOptions {
  bool verify_certificates = true;
  uint64_t max_bytes = uint64_t{64} << 30;
  std::chrono::milliseconds connect_timeout{15000};
  std::chrono::milliseconds stall_timeout{60000};  // no data received for this long
  std::chrono::milliseconds total_timeout{0};      // 0: none (large downloads take what they take)
  std::function<void(uint64_t done, uint64_t total)> progress;  // total 0 if unknown
  std::function<bool()> cancelled;  // polled at least once a second
};

struct UrlParts {
  bool https = false;
  std::string host, port, target;
};
// Syntax check of an http(s) URL (for a clear error naming `url` before a task starts).
Result<UrlParts> ParseHttpUrl(const std::string& url);

struct UrlMetadata {
  std::string filename;  // from Content-Disposition, else the URL's last path segment
  std::string mimetype;
  uint64_t size = 0;     // 0 if the server does not say
};
// HEAD request (redirects followed), as PVE's query-url-metadata. Deadlines: connect 10 s,
// whole request 30 s.
Result<UrlMetadata> QueryUrlMetadata(const std::string& url, bool verify_certificates,
                                     const std::function<bool()>& cancelled = nullptr);

// Downloads `url` into `dest` (created; fsynced; removed again on failure). Returns the byte
// count. Fails with Aborted when cancelled, Unavailable on network errors and deadlines.
Result<uint64_t> DownloadToFile(const std::string& url, const std::string& dest, const DownloadOptions& options);

}  // namespace hearth
