#include "http/https_client.h"
#include "core/pattern.h"
#include "core/strings.h"
#include "http/tls_cert.h"

#include <fcntl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>
#include <cstdio>
#include <memory>
#include <optional>

namespace hearth {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

// Blocking socket calls cannot time out by themselves, so a thread shuts the socket down
// (which wakes them) once nothing has moved for `idle`. No thread when idle is 0.
class Watchdog {
 public:
  using Clock = std::chrono::steady_clock;
  Watchdog(int sock, std::chrono::seconds idle) : last_move_(Clock::now().time_since_epoch().count()) {
    if (idle.count() <= 0) return;
    thread_ = std::thread([this, sock, idle] {
      std::unique_lock lock(mu_);
      while (!cv_.wait_for(lock, std::chrono::milliseconds(250), [&] { return finished_; })) {
        auto since = Clock::now() - Clock::time_point(Clock::duration(last_move_.load()));
        if (since > idle) {
          timed_out_ = true;
          ::shutdown(sock, SHUT_RDWR);
          return;
        }
      }
    });
  }
  ~Watchdog() {
    {
      std::lock_guard lock(mu_);
      finished_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  void Moved() { last_move_ = Clock::now().time_since_epoch().count(); }
  bool timed_out() const { return timed_out_; }

 private:
  std::atomic<int64_t> last_move_;
  std::atomic<bool> timed_out_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool finished_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;
};

class BeastClient final : public HttpsClient {
 public:
  BeastClient(std::string host, std::string port, TlsTrust trust)
      : host_(std::move(host)), port_(std::move(port)), trust_(std::move(trust)), ssl_(ssl::context::tls_client) {
    ssl_.set_default_verify_paths();
    SSL_CTX_set_options(ssl_.native_handle(), SSL_OP_NO_RENEGOTIATION);
    // Verification runs, but its verdict is only recorded here: an unverified certificate
    // may still be trusted by fingerprint after the handshake (see Open).
    ssl_.set_verify_mode(ssl::verify_peer);
  }

  // A CR or LF in a header or the target would start a header of its own (injection).
  static Status CheckHead(const HttpRequest& request) {
    auto has_line_break = [](std::string_view v) { return v.find_first_of("\r\n") != std::string_view::npos; };
    if (has_line_break(request.target) || has_line_break(request.method))
      return Fail(InvalidArgument("request target contains a line break"));
    for (const auto& [k, v] : request.headers)
      if (has_line_break(k) || has_line_break(v)) return Fail(InvalidArgument("header '" + k + "' contains a line break"));
    return Ok();
  }

  // Reads one answer; `watchdog` (if any) hears of every piece that arrives, so its deadline
  // is one of idleness, not of the whole body. A "Connection: close" answer leaves
  // close_pending_ set: the caller drops the stream once its watchdog is gone (never while a
  // watchdog may still shut that socket's descriptor down, which could be reused by then).
  Result<HttpResponse> ReadResponse(Watchdog* watchdog) {
    beast::flat_buffer buf;
    http::response_parser<http::string_body> parser;
    parser.body_limit(max_body_);
    http::read_header(*stream_, buf, parser);
    if (watchdog) watchdog->Moved();
    while (!parser.is_done()) {
      http::read_some(*stream_, buf, parser);
      if (watchdog) watchdog->Moved();
    }
    auto& res = parser.get();
    HttpResponse out;
    out.status = static_cast<int>(res.result_int());
    out.reason = std::string(res.reason());
    out.body = std::move(res.body());
    for (const auto& f : res) out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    close_pending_ = !res.keep_alive();
    return out;
  }

  Result<HttpResponse> SendFile(const HttpRequest& head, const std::string& path, uint64_t rate_bps,
                                const std::function<void(uint64_t)>& progress,
                                std::chrono::seconds idle_timeout) override {
    HEARTH_TRY(CheckHead(head));
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Fail(Internal("cannot open " + path + ": " + strerror(errno)));
    struct FdCloser {
      int fd;
      ~FdCloser() { ::close(fd); }
    } closer{fd};
    struct stat sb;
    if (::fstat(fd, &sb) != 0) return Fail(Internal("cannot stat " + path + ": " + strerror(errno)));
    uint64_t size = static_cast<uint64_t>(sb.st_size);
    if (!stream_) HEARTH_TRY(Open());

    using Clock = std::chrono::steady_clock;
    int sock = beast::get_lowest_layer(*stream_).socket().native_handle();
    std::optional<Watchdog> watchdog(std::in_place, sock, idle_timeout);

    Result<HttpResponse> out = Fail(Unavailable("request failed"));
    try {
      http::request<http::empty_body> req;
      req.method_string(head.method);
      req.target(head.target);
      req.version(11);
      req.set(http::field::host, host_);
      for (const auto& [k, v] : head.headers) req.set(k, v);
      req.content_length(size);
      req.keep_alive(true);
      http::request_serializer<http::empty_body> sr(req);
      http::write_header(*stream_, sr);
      size_t chunk = 1 << 20;
      if (rate_bps > 0) chunk = static_cast<size_t>(std::clamp<uint64_t>(rate_bps / 10, 64 << 10, 1 << 20));
      std::vector<char> buf(chunk);
      uint64_t sent = 0;
      auto t0 = Clock::now();
      try {
        while (sent < size) {
          ssize_t n = ::read(fd, buf.data(), std::min<uint64_t>(chunk, size - sent));
          if (n <= 0) throw std::runtime_error(path + " ended early (" + (n < 0 ? strerror(errno) : "short file") + ")");
          asio::write(*stream_, asio::buffer(buf.data(), static_cast<size_t>(n)));
          sent += static_cast<uint64_t>(n);
          watchdog->Moved();
          if (progress) progress(sent);
          if (rate_bps > 0) {
            auto due = t0 + std::chrono::duration_cast<Clock::duration>(
                                std::chrono::duration<double>(static_cast<double>(sent) / static_cast<double>(rate_bps)));
            std::this_thread::sleep_until(due);
            watchdog->Moved();
          }
        }
      } catch (const boost::system::system_error&) {
        if (watchdog->timed_out()) throw;
        // The server may have answered early (a refusal) and closed: its answer says why.
      }
      out = ReadResponse(&*watchdog);
    } catch (const std::exception& e) {
      bool timed_out = watchdog->timed_out();
      watchdog.reset();
      close_pending_ = true;
      out = Fail(Unavailable(timed_out ? "no progress for " + std::to_string(idle_timeout.count()) +
                                             " s: connection to " + host_ + ":" + port_ + " dropped"
                                       : std::string("request failed: ") + e.what()));
    }
    watchdog.reset();
    if (close_pending_) stream_.reset();
    return out;
  }

  Result<HttpResponse> Send(const HttpRequest& request) override {
    HEARTH_TRY(CheckHead(request));
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!stream_) {
        auto st = Open();
        if (!st) return Fail(st.error());
      }
      try {
        http::request<http::string_body> req;
        req.method_string(request.method);
        req.target(request.target);
        req.version(11);
        req.set(http::field::host, host_);
        for (const auto& [k, v] : request.headers) req.set(k, v);
        req.body() = request.body;
        req.keep_alive(true);
        req.prepare_payload();
        std::optional<Watchdog> watchdog(std::in_place, beast::get_lowest_layer(*stream_).socket().native_handle(), timeout_);
        try {
          http::write(*stream_, req);
          watchdog->Moved();
          auto out = ReadResponse(&*watchdog);
          watchdog.reset();
          if (close_pending_) stream_.reset();
          return out;
        } catch (const std::exception&) {
          bool timed_out = watchdog && watchdog->timed_out();
          watchdog.reset();  // before the socket goes (its descriptor may be reused)
          if (timed_out) {
            stream_.reset();
            return Fail(Unavailable("no answer from " + host_ + ":" + port_ + " for " +
                                    std::to_string(timeout_.count()) + " s: connection dropped"));
          }
          throw;
        }
      } catch (const std::exception& e) {
        stream_.reset();
        if (attempt == 1) return Fail(Unavailable(std::string("request failed: ") + e.what()));
      }
    }
    return Fail(Unavailable("request failed"));
  }

  void SetLimits(uint64_t max_body, std::chrono::seconds timeout) override {
    max_body_ = max_body;
    timeout_ = timeout;
  }

  Status Open() {
    try {
      stream_.emplace(io_, ssl_);
      SSL_set_tlsext_host_name(stream_->native_handle(), host_.c_str());
      // The callback stays installed on the stream after Open() returns, so it owns what it
      // uses (and the context refuses renegotiation, which would call it again).
      auto verified = std::make_shared<bool>(true);
      stream_->set_verify_callback([verified, check_name = ssl::host_name_verification(host_)](
                                       bool preverified, ssl::verify_context& ctx) {
        *verified = *verified && check_name(preverified, ctx);
        return true;
      });
      tcp::resolver resolver(io_);
      beast::get_lowest_layer(*stream_).connect(resolver.resolve(host_, port_));
      {
        // A server that takes the connection but never speaks TLS must not hold us forever.
        std::optional<Watchdog> watchdog(std::in_place, beast::get_lowest_layer(*stream_).socket().native_handle(),
                                         timeout_);
        boost::system::error_code ec;
        stream_->handshake(ssl::stream_base::client, ec);
        bool timed_out = watchdog->timed_out();
        watchdog.reset();
        if (ec)
          throw boost::system::system_error(
              ec, timed_out ? "no TLS handshake within " + std::to_string(timeout_.count()) + " s" : "TLS handshake");
      }
      if (!trust_.insecure) {
        X509* cert = SSL_get1_peer_certificate(stream_->native_handle());
        if (!cert) {
          stream_.reset();
          return Fail(Unavailable("the server sent no certificate"));
        }
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned n = 0;
        X509_digest(cert, EVP_sha256(), md, &n);
        X509_free(cert);
        std::string fp = FormatFingerprint(md, n);
        std::string host_port = host_ + ":" + port_;
        bool trusted = !trust_.fingerprint.empty() ? ToUpper(fp) == ToUpper(trust_.fingerprint)
                       : *verified                 ? true
                       : trust_.on_unverified      ? trust_.on_unverified(host_port, fp)
                                                   : false;
        if (!trusted) {
          stream_.reset();
          if (!trust_.fingerprint.empty())
            return Fail(Unavailable("the certificate of " + host_port + " has fingerprint " + fp +
                                    ", not the pinned one: refusing to talk to it"));
          return Fail(Unavailable("the certificate of " + host_port + " (SHA-256 fingerprint " + fp +
                                  ") is not trusted; compare it with the fingerprint `hearth serve` logged at start, "
                                  "then pin it with --fingerprint (or HEARTH_FINGERPRINT) or accept it in `hearth login`"));
        }
      }
    } catch (const std::exception& e) {
      stream_.reset();
      return Fail(Unavailable("cannot connect to " + host_ + ":" + port_ + ": " + e.what() +
                              " (is `hearth serve` running? set HEARTH_URL)"));
    }
    return Ok();
  }

 private:
  std::string host_, port_;
  TlsTrust trust_;
  asio::io_context io_;
  ssl::context ssl_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> stream_;
  uint64_t max_body_ = uint64_t{1} << 30;
  bool close_pending_ = false;  // the last answer said "Connection: close"
  std::chrono::seconds timeout_{0};
};

}  // namespace

Result<std::unique_ptr<HttpsClient>> HttpsClient::Connect(const std::string& base, TlsTrust trust) {
  static const Pattern re("https://(\\[[^\\]]+\\]|[^:/\\[\\]]+)(?::(\\d{1,5}))?/?");
  auto m = re.Capture(base);
  if (!m) return Fail(InvalidArgument("invalid server URL '" + base + "' (want https://host[:port])"));
  std::string host = (*m)[0];
  if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
  std::string port = (*m)[1].empty() ? "8006" : (*m)[1];
  auto c = std::make_unique<BeastClient>(host, port, std::move(trust));
  return std::unique_ptr<HttpsClient>(std::move(c));
}

}  // namespace hearth
