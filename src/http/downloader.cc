#include "http/downloader.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "core/pattern.h"
#include "core/strings.h"

namespace hearth {
namespace {

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Transfer {
  const DownloadOptions* opt = nullptr;
  int fd = -1;
  uint64_t written = 0;
  bool write_failed = false;
  bool too_large = false;
  bool was_cancelled = false;
  // Headers of the last response (a redirect chain has several).
  std::string content_type, disposition;
};

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  if (StartsWith(line, "HTTP/")) {
    t->content_type.clear();
    t->disposition.clear();
  }
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name = ToLower(line.substr(0, colon));
    std::string value(Trim(line.substr(colon + 1)));
    if (name == "content-type") t->content_type = value.substr(0, 1024);
    if (name == "content-disposition") t->disposition = value.substr(0, 1024);
  }
  return size * n;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  if (t->fd < 0) return len;
  if (t->written + len > t->opt->max_bytes) {
    t->too_large = true;
    return 0;  // aborts the transfer
  }
  size_t off = 0;
  while (off < len) {
    ssize_t w = ::write(t->fd, data + off, len - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      t->write_failed = true;
      return 0;
    }
    off += static_cast<size_t>(w);
  }
  t->written += len;
  return len;
}

int OnProgress(void* user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  if (t->opt->cancelled && t->opt->cancelled()) {
    t->was_cancelled = true;
    return 1;  // aborts the transfer
  }
  if (t->opt->progress && dlnow > 0) t->opt->progress(static_cast<uint64_t>(dlnow), static_cast<uint64_t>(dltotal));
  return 0;
}

struct Outcome {
  long status = 0;
  uint64_t length = 0;
  std::string effective_url;
};

// Runs one transfer: a HEAD when t.fd < 0 and `head`, else a GET into t.fd.
Result<Outcome> Perform(const std::string& url, bool head, Transfer& t) {
  GlobalInit();
  const DownloadOptions& opt = *t.opt;
  CURL* c = curl_easy_init();
  if (!c) return Fail(Internal("cannot initialise libcurl"));
  char errbuf[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for DNS timeouts
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "hearth");
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(opt.connect_timeout.count()));
  if (opt.total_timeout.count() > 0) curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(opt.total_timeout.count()));
  // A stall: less than 1 byte/s for stall_timeout (curl checks this once a second).
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, std::max(1L, static_cast<long>(opt.stall_timeout.count() / 1000)));
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, opt.verify_certificates ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, opt.verify_certificates ? 2L : 0L);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, OnProgress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "identity");
  if (head) curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  CURLcode rc = curl_easy_perform(c);
  Outcome out;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out.status);
  curl_off_t length = -1;
  curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
  out.length = length > 0 ? static_cast<uint64_t>(length) : 0;
  char* eff = nullptr;
  curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &eff);
  out.effective_url = eff ? eff : url;
  std::string detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
  curl_easy_cleanup(c);
  if (t.was_cancelled) return Fail(Aborted("download cancelled"));
  if (t.too_large) return Fail(Unavailable("download: larger than " + std::to_string(opt.max_bytes) + " bytes"));
  if (t.write_failed) return Fail(Internal("download: writing the file failed (disk full?)"));
  if (rc == CURLE_OPERATION_TIMEDOUT) return Fail(Unavailable("request to " + url + " timed out: " + detail));
  if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE)
    return Fail(Unavailable("request to " + url + " failed: certificate verify failed (" + detail +
                            "); pass verify-certificates=0 to skip the check"));
  if (rc != CURLE_OK) return Fail(Unavailable("request to " + url + " failed: " + detail));
  if (out.status < 200 || out.status >= 300)
    return Fail(Unavailable("download failed: HTTP " + std::to_string(out.status) + " from " + out.effective_url));
  return out;
}

}  // namespace

Result<UrlParts> ParseHttpUrl(const std::string& url) {
  static const Pattern re(R"((https?)://(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-]+)(?::(\d{1,5}))?(/[^\s]*)?)");
  auto m = url.size() <= 4096 ? re.Capture(url) : std::nullopt;
  if (!m) return Fail(FieldError("url", "invalid URL '" + url.substr(0, 200) + "' (want http:// or https://)"));
  UrlParts u;
  u.https = (*m)[0] == "https";
  u.host = (*m)[1];
  if (u.host.front() == '[') u.host = u.host.substr(1, u.host.size() - 2);
  u.port = (*m)[2].empty() ? (u.https ? "443" : "80") : (*m)[2];
  u.target = (*m)[3].empty() ? "/" : (*m)[3];
  return u;
}

Result<uint64_t> DownloadToFile(const std::string& url, const std::string& dest, const DownloadOptions& opt) {
  HEARTH_TRY(ParseHttpUrl(url));
  int fd = ::open(dest.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Fail(Internal("cannot create " + dest + ": " + std::strerror(errno)));
  Transfer t;
  t.opt = &opt;
  t.fd = fd;
  auto r = Perform(url, false, t);
  // Durable before anyone renames it into place.
  bool synced = r && ::fsync(fd) == 0;
  ::close(fd);
  if (!r || !synced) {
    ::unlink(dest.c_str());
    if (!r) return Fail(r.error());
    return Fail(Internal("fsync " + dest + ": " + std::strerror(errno)));
  }
  return t.written;
}

Result<UrlMetadata> QueryUrlMetadata(const std::string& url, bool verify_certificates,
                                     const std::function<bool()>& cancelled) {
  HEARTH_TRY(ParseHttpUrl(url));
  DownloadOptions opt;
  opt.verify_certificates = verify_certificates;
  opt.connect_timeout = std::chrono::seconds(10);
  opt.total_timeout = std::chrono::seconds(30);
  opt.cancelled = cancelled;
  Transfer t;
  t.opt = &opt;
  HEARTH_ASSIGN_OR_RETURN(Outcome o, Perform(url, true, t));
  UrlMetadata m;
  m.mimetype = t.content_type.substr(0, t.content_type.find(';'));
  m.size = o.length;
  static const Pattern disp(R"re(filename\*?=(?:UTF-8'')?"?([^";]+)"?)re", /*case_insensitive=*/true);
  if (auto match = disp.Search(t.disposition)) m.filename = (*match)[0];
  if (m.filename.empty()) {
    auto parts = ParseHttpUrl(o.effective_url);
    std::string path = parts ? parts->target.substr(0, parts->target.find('?')) : "";
    m.filename = path.substr(path.rfind('/') + 1);
  }
  if (size_t slash = m.filename.rfind('/'); slash != std::string::npos) m.filename = m.filename.substr(slash + 1);
  return m;
}

}  // namespace hearth
