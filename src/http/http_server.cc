#include "http/http_server.h"

#include "http/beast_request.h"
#include "sys/random_source.h"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <atomic>
#include <chrono>
#include <memory>
#include <cctype>
#include <limits>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace hearth {

// Longest HTTP reason phrase sent (bytes, before "...").
constexpr size_t kMaxReason = 512;
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

std::string TempName(const std::string& dir) { return dir + "/.upload-" + RandomHex(16); }

class ConnectionLimiter;

// One connection's place in the limiter; released when the session (its only owner) ends.
// A connection is idle while it has not finished its TLS handshake, is waiting for (or still
// receiving) a request header, or is still receiving a small (non-upload) body: at the global
// cap the oldest idle one is closed to make room, so a flood of connections that never
// finish speaking cannot lock everyone else out. (Bodies were not idle at first: 1,100
// connections sending a 1 MB login body a byte every 20 s locked clients out; found by a
// break-it pass.) Uploads are not idle: they are authenticated before their body is read.
class ConnectionSlot {
 public:
  ~ConnectionSlot();
  // Called on the session's strand. `close` must be safe to call from any thread.
  void SetIdle(bool idle);
  void SetCloser(std::function<void()> close);

 private:
  friend class ConnectionLimiter;
  std::shared_ptr<ConnectionLimiter> owner_;
  std::string ip_;
  uint64_t idle_seq_ = 0;  // GUARDED_BY(owner_->mu_); 0: not idle
  bool evicted_ = false;   // GUARDED_BY(owner_->mu_): closed by MakeRoomOrPause
  std::function<void()> close_;  // GUARDED_BY(owner_->mu_)
};

// Counts connections in all and per address. Shared with every session, so a session that
// outlives the server (its destructor runs when the io_context goes) touches only this.
class ConnectionLimiter {
 public:
  ConnectionLimiter(size_t max_total, size_t max_per_ip) : max_total_(max_total), max_per_ip_(max_per_ip) {}

  // Null when `ip` is at its limit.
  std::shared_ptr<ConnectionSlot> Acquire(const std::string& ip, const std::shared_ptr<ConnectionLimiter>& self) {
    std::lock_guard lock(mu_);
    size_t& n = per_ip_[ip];
    if (n >= max_per_ip_) {
      if (n == 0) per_ip_.erase(ip);
      return nullptr;
    }
    ++n;
    ++total_;
    auto slot = std::make_shared<ConnectionSlot>();
    slot->owner_ = self;
    slot->ip_ = ip;
    return slot;
  }

  // At the total cap: closes the oldest idle connection to make room (the caller may go on
  // accepting: the closed one leaves within milliseconds), or, when every connection is
  // busy with a request, remembers that accepting paused so that a release resumes it.
  // Returns true if accepting must pause.
  bool MakeRoomOrPause() {
    std::function<void()> close;
    {
      std::lock_guard lock(mu_);
      if (total_ < max_total_ + evicting_) return false;
      if (idle_.empty()) {
        paused_ = true;
        return true;
      }
      ConnectionSlot* oldest = idle_.begin()->second;
      idle_.erase(idle_.begin());
      oldest->idle_seq_ = 0;
      oldest->evicted_ = true;
      close = std::move(oldest->close_);
      ++evicting_;
    }
    if (close) close();
    return false;
  }

  void SetResume(std::function<void()> resume) {
    std::lock_guard lock(mu_);
    resume_ = std::move(resume);
  }

 private:
  friend class ConnectionSlot;

  void SetIdle(ConnectionSlot& slot, bool idle) {
    std::lock_guard lock(mu_);
    if (slot.idle_seq_) idle_.erase(slot.idle_seq_);
    slot.idle_seq_ = 0;
    if (idle) {
      slot.idle_seq_ = ++seq_;
      idle_[slot.idle_seq_] = &slot;
    }
  }

  void SetCloser(ConnectionSlot& slot, std::function<void()> close) {
    std::lock_guard lock(mu_);
    slot.close_ = std::move(close);
  }

  void Release(ConnectionSlot& slot) {
    std::function<void()> resume;
    {
      std::lock_guard lock(mu_);
      if (slot.idle_seq_) idle_.erase(slot.idle_seq_);
      if (slot.evicted_) --evicting_;
      if (auto it = per_ip_.find(slot.ip_); it != per_ip_.end() && --it->second == 0) per_ip_.erase(it);
      --total_;
      if (paused_ && total_ < max_total_) {
        paused_ = false;
        resume = resume_;
      }
    }
    if (resume) resume();
  }

  const size_t max_total_, max_per_ip_;
  std::mutex mu_;
  std::map<std::string, size_t> per_ip_;        // GUARDED_BY(mu_)
  std::map<uint64_t, ConnectionSlot*> idle_;    // GUARDED_BY(mu_), oldest first
  uint64_t seq_ = 0;                            // GUARDED_BY(mu_)
  size_t total_ = 0;                            // GUARDED_BY(mu_)
  size_t evicting_ = 0;                         // GUARDED_BY(mu_): closed for room, not yet gone
  bool paused_ = false;                         // GUARDED_BY(mu_)
  std::function<void()> resume_;                // GUARDED_BY(mu_)
};

ConnectionSlot::~ConnectionSlot() {
  if (owner_) owner_->Release(*this);
}
void ConnectionSlot::SetIdle(bool idle) { owner_->SetIdle(*this, idle); }
void ConnectionSlot::SetCloser(std::function<void()> close) { owner_->SetCloser(*this, std::move(close)); }

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, ssl::context& ctx, const HttpsServerOptions& opts, const HttpsServer::Handler& handler,
          std::shared_ptr<ConnectionSlot> slot, std::shared_ptr<std::atomic<bool>> stopped)
      : stream_(std::move(socket), ctx), delay_(stream_.get_executor()), opts_(opts), handler_(handler),
        slot_(std::move(slot)), stopped_(std::move(stopped)) {}

  ~Session() {
    if (!file_path_.empty()) ::unlink(file_path_.c_str());
  }

  void Run() {
    // At the connection cap the limiter may close this connection while it is idle.
    slot_->SetCloser([weak = weak_from_this(), executor = stream_.get_executor()] {
      asio::post(executor, [weak] {
        if (auto self = weak.lock()) self->Abort();
      });
    });
    slot_->SetIdle(true);
    // A TLS handshake takes milliseconds; a connection that does not start one holds a
    // place of its address's quota, so it gets much less time than a request.
    beast::get_lowest_layer(stream_).expires_after(std::min(opts_.handshake_timeout, opts_.client_timeout));
    stream_.async_handshake(ssl::stream_base::server,
                            [self = shared_from_this()](beast::error_code ec) { self->OnHandshake(ec); });
  }

 private:
  // Every read and write must make progress within client_timeout (slow or idle clients
  // are dropped); the deadline is set again before each operation.
  void Deadline() { beast::get_lowest_layer(stream_).expires_after(opts_.client_timeout); }

  void OnHandshake(beast::error_code ec) {
    if (ec) return;
    ReadHeader();
  }

  void ReadHeader() {
    slot_->SetIdle(true);
    header_parser_.emplace();
    header_parser_->header_limit(kMaxRequestHeaderBytes);
    // Body limits depend on the route (uploads are large); they are applied in OnHeader.
    header_parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    Deadline();
    http::async_read_header(stream_, buffer_, *header_parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  // A request that does not parse (a bad or doubled Content-Length, Content-Length with
  // Transfer-Encoding, a bad chunk, a line longer than the read buffer) gets a 400 rather
  // than a silent close; end of stream and timeouts are just closed.
  static bool IsParseError(beast::error_code ec) {
    return ec && ec.category() == http::make_error_code(http::error::bad_version).category() &&
           ec != http::error::end_of_stream && ec != http::error::partial_message;
  }

  // Errors of the upload's file body (beast's file writer reports errno as it is), as
  // opposed to the socket's.
  static bool IsFileWriteError(beast::error_code ec) {
    if (ec.category() != boost::system::system_category() && ec.category() != boost::system::generic_category())
      return false;
    switch (ec.value()) {
      case ENOSPC: case EDQUOT: case EFBIG: case EIO: case EROFS: return true;
      default: return false;
    }
  }

  void OnHeader(beast::error_code ec) {
    slot_->SetIdle(false);  // a request is under way: never closed to make room
    if (ec == http::error::header_limit) return RefuseMidRequest(MakeError(414, "request header too large"));
    if (IsParseError(ec)) return RefuseMidRequest(MakeError(400, "bad request - " + ec.message()));
    if (ec) {
      if (ec != http::error::end_of_stream && ec != beast::error::timeout && ec != asio::ssl::error::stream_truncated)
        spdlog::debug("read header: {}", ec.message());
      return Close();
    }
    // RFC 9112 6.3: a request whose Transfer-Encoding does not end in chunked has no
    // knowable length.
    if (header_parser_->get().count(http::field::transfer_encoding) && !header_parser_->chunked())
      return RefuseMidRequest(MakeError(400, "bad Transfer-Encoding"));
    std::optional<HttpsServerOptions::StreamTarget> stream;
    if (opts_.stream_body_to) {
      std::optional<uint64_t> length;
      if (auto cl = header_parser_->content_length()) length = *cl;
      stream = opts_.stream_body_to(Convert(header_parser_->get()), length);
    }
    // Refused before a byte of the body is read (no credentials, no privilege, no room):
    // answered at once, then the body is discarded by the lingering close, for at most
    // kLingerTime, so a refused caller cannot keep the server reading a huge body.
    if (stream && stream->refusal) return RefuseMidRequest(std::move(*stream->refusal));
    if (stream) {
      file_path_ = TempName(stream->dir);
      if (!StartFileBody(file_path_)) {
        file_path_.clear();
        return RefuseMidRequest(MakeError(500, "cannot create upload file"));
      }
      return;
    }
    if (auto cl = header_parser_->content_length(); cl && *cl > opts_.max_body)
      return RefuseMidRequest(MakeError(413, "request body too large"));
    string_parser_.emplace(std::move(*header_parser_));
    string_parser_->body_limit(opts_.max_body);
    slot_->SetIdle(true);  // until the body is in (see ConnectionSlot)
    Deadline();
    http::async_read(stream_, buffer_, *string_parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->OnStringBody(ec); });
  }

  bool StartFileBody(const std::string& path) {
    file_parser_.emplace(std::move(*header_parser_));
    file_parser_->body_limit(opts_.max_streamed_body);
    beast::error_code fec;
    file_parser_->get().body().open(path.c_str(), beast::file_mode::write, fec);
    if (fec) return false;
    ReadFileChunk();
    return true;
  }

  // Large uploads are read piece by piece so that the deadline measures a stall, not the
  // whole transfer.
  void ReadFileChunk() {
    if (file_parser_->is_done()) {  // no body at all, or all of it came with the header
      return asio::post(stream_.get_executor(), [self = shared_from_this()] { self->OnFileBody({}); });
    }
    Deadline();
    http::async_read_some(stream_, buffer_, *file_parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (!ec && !self->file_parser_->is_done()) return self->ReadFileChunk();
      self->OnFileBody(ec);
    });
  }

  template <class Req>
  HttpRequest Convert(Req& req) {
    HttpRequest r = RequestHead(req);
    beast::error_code ec;
    auto ep = beast::get_lowest_layer(stream_).socket().remote_endpoint(ec);
    if (!ec) r.peer = ep.address().to_string();
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    return r;
  }

  void OnStringBody(beast::error_code ec) {
    slot_->SetIdle(false);
    if (ec == http::error::body_limit) return RefuseMidRequest(MakeError(413, "request body too large"));
    if (IsParseError(ec)) return RefuseMidRequest(MakeError(400, "bad request - " + ec.message()));
    if (ec) return Close();
    auto& req = string_parser_->get();
    HttpRequest r = Convert(req);
    r.body = std::move(req.body());
    Dispatch(std::move(r));
  }

  void OnFileBody(beast::error_code ec) {
    auto& req = file_parser_->get();
    req.body().close();
    if (ec) {
      spdlog::warn("upload body: {}", ec.message());
      ::unlink(file_path_.c_str());
      file_path_.clear();
      if (ec == http::error::body_limit) return RefuseMidRequest(MakeError(413, "upload too large"));
      if (IsParseError(ec)) return RefuseMidRequest(MakeError(400, "bad request - " + ec.message()));
      // The disk failed, not the client: say so (an answer, not a dropped connection).
      if (IsFileWriteError(ec))
        return RefuseMidRequest(MakeError(500, "writing the upload failed: " + ec.message() +
                                                   " (free space on the storage, then upload again)"));
      return Close();
    }
    HttpRequest r = Convert(req);
    r.body_file = file_path_;
    Dispatch(std::move(r));
  }

  // Shared by a request's Responder and Dispatch: an answer given while the handler still
  // runs on this I/O thread is sent directly; a later one (from a worker) is posted back to
  // the session's strand.
  struct Pending {
    std::mutex mu;
    bool dispatching = true;       // GUARDED_BY(mu)
    bool answered = false;         // GUARDED_BY(mu)
    std::optional<HttpResponse> inline_answer;  // GUARDED_BY(mu)
  };

  void Dispatch(HttpRequest r) {
    auto pending = std::make_shared<Pending>();
    HttpsServer::Responder respond = [self = shared_from_this(), pending](HttpResponse resp) {
      {
        std::lock_guard lock(pending->mu);
        if (pending->answered || *self->stopped_) return;  // at most once
        pending->answered = true;
        if (pending->dispatching) {
          pending->inline_answer = std::move(resp);
          return;
        }
      }
      asio::post(self->stream_.get_executor(), [self, resp = std::move(resp)]() mutable {
        self->Reply(std::move(resp), self->keep_alive_ && resp.status < 400);
      });
    };
    std::string method = r.method, target = r.target;
    try {
      handler_(std::move(r), respond);
    } catch (const std::exception& e) {
      spdlog::error("handler threw on {} {}: {}", method, target, e.what());
      respond(MakeError(500, "internal error"));
    }
    std::optional<HttpResponse> now;
    {
      std::lock_guard lock(pending->mu);
      pending->dispatching = false;
      now = std::move(pending->inline_answer);
    }
    if (now) {
      bool keep = keep_alive_ && now->status < 400;
      Reply(std::move(*now), keep);
    }
  }

  static HttpResponse MakeError(int status, const std::string& msg) {
    HttpResponse r;
    r.status = status;
    r.reason = msg;
    r.body = "{\"data\":null,\"message\":\"" + msg + "\\n\"}";
    return r;
  }

  void Reply(HttpResponse resp, bool keep_alive) {
    // The handler is done with an uploaded body by now: whatever it did not move is a temp file.
    if (!file_path_.empty()) {
      ::unlink(file_path_.c_str());
      file_path_.clear();
    }
    if (resp.delay_ms > 0) {
      int ms = resp.delay_ms;
      resp.delay_ms = 0;
      delay_.expires_after(std::chrono::milliseconds(ms));
      delay_.async_wait([self = shared_from_this(), resp = std::move(resp), keep_alive](beast::error_code) mutable {
        self->Reply(std::move(resp), keep_alive);
      });
      return;
    }
    if (resp.shared_body) {
      // Zero-copy: the response points into the shared body, which the write handler keeps alive.
      auto res = std::make_shared<http::response<http::span_body<const char>>>();
      res->body() = boost::beast::span<const char>(resp.shared_body->data(), resp.shared_body->size());
      Send(res, resp, keep_alive, resp.shared_body);
      return;
    }
    auto res = std::make_shared<http::response<http::string_body>>();
    res->body() = std::move(resp.body);
    Send(res, resp, keep_alive, nullptr);
  }

  template <class Response>
  void Send(std::shared_ptr<Response> res, const HttpResponse& resp, bool keep_alive,
            std::shared_ptr<const std::string> keep) {
    res->version(version_ ? version_ : 11);
    res->result(static_cast<unsigned>(resp.status));
    if (!resp.reason.empty()) {
      // The reason phrase must be one line of printable text, and short: an error naming a
      // hostile 5,000-character value would echo it whole (the body keeps the full message).
      std::string reason = resp.reason.substr(0, resp.reason.find('\n'));
      if (reason.size() > kMaxReason) {
        size_t cut = kMaxReason;
        while (cut > 0 && (static_cast<unsigned char>(reason[cut]) & 0xC0) == 0x80) --cut;  // whole UTF-8 characters
        reason = reason.substr(0, cut) + "...";
      }
      for (auto& c : reason)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
      res->reason(reason);
    }
    res->set(http::field::server, "pve-api-daemon/3.0");
    res->set(http::field::content_type, resp.content_type);
    res->set(http::field::cache_control, "max-age=0");
    res->set(http::field::pragma, "no-cache");
    for (const auto& [k, v] : resp.headers) res->set(k, v);
    res->keep_alive(keep_alive);
    res->prepare_payload();
    Deadline();
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res, keep, keep_alive](beast::error_code ec, size_t) {
                        if (ec) return self->Close();
                        if (!keep_alive) return self->linger_ ? self->Linger() : self->Close();
                        self->ReadHeader();
                      });
  }

  // An answer given before the request was read to its end (too large): the client is
  // probably still sending, and closing a socket with unread input makes the kernel send a
  // reset that can destroy the answer in the client's receive buffer. So, like nginx's
  // lingering close, the answer is sent, the write side shut down, and input discarded for
  // up to kLingerTime (kLingerRead without data) before the socket is closed, as nginx's
  // lingering_time and lingering_timeout do.
  void RefuseMidRequest(HttpResponse resp) {
    linger_ = true;
    Reply(std::move(resp), false);
  }

  static constexpr std::chrono::seconds kLingerTime{30};
  static constexpr std::chrono::seconds kLingerRead{5};

  void Linger() {
    beast::error_code ec;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return Abort();
    linger_until_ = std::chrono::steady_clock::now() + kLingerTime;
    linger_buf_ = std::make_unique<char[]>(kLingerChunk);
    DrainLingering();
  }

  void DrainLingering() {
    auto left = linger_until_ - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) return Abort();
    auto& lowest = beast::get_lowest_layer(stream_);
    lowest.expires_after(std::min<std::chrono::steady_clock::duration>(left, kLingerRead));
    lowest.async_read_some(asio::buffer(linger_buf_.get(), kLingerChunk),
                           [self = shared_from_this()](beast::error_code ec, size_t) {
                             if (ec) return self->Abort();  // the client closed, or time is up
                             self->DrainLingering();
                           });
  }

  void Abort() {
    beast::error_code ec;
    beast::get_lowest_layer(stream_).socket().close(ec);
  }

  void Close() {
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(5));
    stream_.async_shutdown([self = shared_from_this()](beast::error_code) {
      beast::error_code ec;
      beast::get_lowest_layer(self->stream_).socket().shutdown(tcp::socket::shutdown_both, ec);
    });
  }

  beast::ssl_stream<beast::tcp_stream> stream_;
  asio::steady_timer delay_;
  const HttpsServerOptions& opts_;
  const HttpsServer::Handler& handler_;
  std::shared_ptr<ConnectionSlot> slot_;  // releases this connection's place when the session ends
  std::shared_ptr<std::atomic<bool>> stopped_;
  // Bounded, so that a chunk-size line that never ends cannot grow it without limit: the
  // header (64 KiB) fits, bodies pass through it in pieces.
  beast::flat_buffer buffer_{kReadBufferLimit};
  static constexpr size_t kReadBufferLimit = 1 << 20;
  std::optional<http::request_parser<http::empty_body>> header_parser_;
  std::optional<http::request_parser<http::string_body>> string_parser_;
  std::optional<http::request_parser<http::file_body>> file_parser_;
  std::string file_path_;
  bool linger_ = false;                  // answered before the request was read to its end
  static constexpr size_t kLingerChunk = 16 * 1024;
  std::chrono::steady_clock::time_point linger_until_;
  std::unique_ptr<char[]> linger_buf_;
  bool keep_alive_ = false;
  unsigned version_ = 11;
};

class BeastServer final : public HttpsServer {
 public:
  BeastServer(HttpsServerOptions opts, Handler handler)
      : opts_(std::move(opts)), handler_(std::move(handler)), ssl_(ssl::context::tls_server), acceptor_(io_),
        backoff_timer_(io_),
        limiter_(std::make_shared<ConnectionLimiter>(opts_.max_connections, opts_.max_connections_per_ip)) {}

  ~BeastServer() override { Stop(); }

  Status Init() {
    try {
      ssl_.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                       ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
      ssl_.use_certificate_chain_file(opts_.cert_file);
      ssl_.use_private_key_file(opts_.key_file, ssl::context::pem);
      auto addr = asio::ip::make_address(opts_.address);
      tcp::endpoint ep(addr, opts_.port);
      acceptor_.open(ep.protocol());
      acceptor_.set_option(asio::socket_base::reuse_address(true));
      acceptor_.bind(ep);
      acceptor_.listen(asio::socket_base::max_listen_connections);
      port_ = acceptor_.local_endpoint().port();
    } catch (const std::exception& e) {
      return Fail(Unavailable("cannot listen on " + opts_.address + ":" + std::to_string(opts_.port) + ": " + e.what()));
    }
    limiter_->SetResume([this, stopped = stopped_] {
      if (!*stopped) asio::post(acceptor_.get_executor(), [this] { Accept(); });
    });
    Accept();
    for (int i = 0; i < std::max(1, opts_.threads); ++i) threads_.emplace_back([this] { io_.run(); });
    return Ok();
  }

  uint16_t port() const override { return port_; }

  void Stop() override {
    if (stopped_->exchange(true)) return;
    limiter_->SetResume(nullptr);
    asio::post(io_, [this] {
      beast::error_code ec;
      acceptor_.close(ec);
      backoff_timer_.cancel();
    });
    io_.stop();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

 private:
  void Accept() {
    acceptor_.async_accept(asio::make_strand(io_), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || *stopped_) return;
      if (ec) return BackOff(ec);
      backoff_ = std::chrono::milliseconds(0);
      beast::error_code ignored;
      auto ep = socket.remote_endpoint(ignored);
      std::string ip = ignored ? std::string("?") : ep.address().to_string();
      if (auto slot = limiter_->Acquire(ip, limiter_)) {
        socket.set_option(tcp::no_delay(true), ignored);
        std::make_shared<Session>(std::move(socket), ssl_, opts_, handler_, std::move(slot), stopped_)->Run();
      } else {
        LogRateLimited("too many connections from " + ip + "; closing the new one");
        socket.close(ignored);
      }
      if (limiter_->MakeRoomOrPause()) {
        LogRateLimited("connection limit (" + std::to_string(opts_.max_connections) +
                       ") reached with every connection busy; accepting again when one closes");
        return;  // a closing connection resumes accepting
      }
      Accept();
    });
  }

  // Out of file descriptors (or a transient network error): wait before trying again, so
  // the loop does not spin while the pending connection stays in the backlog.
  void BackOff(const beast::error_code& ec) {
    backoff_ = std::min(std::chrono::milliseconds(1000), std::max(std::chrono::milliseconds(20), backoff_ * 2));
    LogRateLimited("accept: " + ec.message() + "; retrying in " + std::to_string(backoff_.count()) + " ms");
    backoff_timer_.expires_after(backoff_);
    backoff_timer_.async_wait([this](beast::error_code e) {
      if (!e && !*stopped_) Accept();
    });
  }

  void LogRateLimited(const std::string& message) {
    auto now = std::chrono::steady_clock::now();
    if (now - last_log_ < std::chrono::seconds(10)) return;
    last_log_ = now;
    spdlog::warn("{}", message);
  }

  HttpsServerOptions opts_;
  Handler handler_;
  asio::io_context io_;
  ssl::context ssl_;
  tcp::acceptor acceptor_;
  asio::steady_timer backoff_timer_;
  std::chrono::milliseconds backoff_{0};               // accept chain only
  std::chrono::steady_clock::time_point last_log_{};   // accept chain only
  std::shared_ptr<ConnectionLimiter> limiter_;
  std::shared_ptr<std::atomic<bool>> stopped_ = std::make_shared<std::atomic<bool>>(false);
  std::vector<std::thread> threads_;
  uint16_t port_ = 0;
};

}  // namespace

Result<std::unique_ptr<HttpsServer>> HttpsServer::Start(const HttpsServerOptions& options, Handler handler) {
  auto server = std::make_unique<BeastServer>(options, std::move(handler));
  HEARTH_TRY(server->Init());
  return std::unique_ptr<HttpsServer>(std::move(server));
}

}  // namespace hearth
