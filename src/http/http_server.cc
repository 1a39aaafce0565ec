#include "http/http_server.h"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <limits>
#include <cctype>
#include <random>
#include <thread>
#include <vector>

namespace hearth {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

constexpr auto kReadTimeout = std::chrono::seconds(120);

std::string TempName(const std::string& dir) {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t salt = std::random_device{}();
  return dir + "/.upload-" + std::to_string(getpid()) + "-" + std::to_string(salt % 100000) + "-" +
         std::to_string(counter++);
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, ssl::context& ctx, const HttpsServerOptions& opts, const HttpsServer::Handler& handler)
      : stream_(std::move(socket), ctx), opts_(opts), handler_(handler) {}

  void Run() {
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(30));
    stream_.async_handshake(ssl::stream_base::server,
                            [self = shared_from_this()](beast::error_code ec) { self->OnHandshake(ec); });
  }

 private:
  void OnHandshake(beast::error_code ec) {
    if (ec) return;
    ReadHeader();
  }

  void ReadHeader() {
    header_parser_.emplace();
    header_parser_->header_limit(64 * 1024);
    // Body limits depend on the route (uploads are large); they are applied in OnHeader.
    header_parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    beast::get_lowest_layer(stream_).expires_after(kReadTimeout);
    http::async_read_header(stream_, buffer_, *header_parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) {
      spdlog::warn("read header: {}", ec.message());
      return Close();
    }
    const auto& h = header_parser_->get();
    std::string method(h.method_string());
    std::string target(h.target());
    std::optional<HttpsServerOptions::StreamTarget> stream;
    if (opts_.stream_body_to) {
      std::optional<uint64_t> length;
      if (auto cl = header_parser_->content_length()) length = *cl;
      stream = opts_.stream_body_to(method, target, length);
    }
    if (stream && !stream->refusal.empty()) {
      // Clients send the whole body before they read a reply, so drain it (to /dev/null)
      // and then answer; closing early would look like a network error to them.
      refusal_ = stream->refusal;
      file_parser_.emplace(std::move(*header_parser_));
      file_parser_->body_limit(opts_.max_streamed_body);
      beast::error_code fec;
      file_parser_->get().body().open("/dev/null", beast::file_mode::write, fec);
      http::async_read(stream_, buffer_, *file_parser_,
                       [self = shared_from_this()](beast::error_code ec, size_t) { self->OnFileBody(ec); });
      return;
    }
    if (stream) {
      file_path_ = TempName(stream->dir);
      file_parser_.emplace(std::move(*header_parser_));
      file_parser_->body_limit(opts_.max_streamed_body);
      beast::error_code fec;
      file_parser_->get().body().open(file_path_.c_str(), beast::file_mode::write, fec);
      if (fec) {
        file_path_.clear();
        return Reply(MakeError(500, "cannot create upload file: " + fec.message()), false);
      }
      http::async_read(stream_, buffer_, *file_parser_,
                       [self = shared_from_this()](beast::error_code ec, size_t) { self->OnFileBody(ec); });
    } else {
      if (auto cl = header_parser_->content_length(); cl && *cl > opts_.max_body)
        return Reply(MakeError(413, "request body too large"), false);
      string_parser_.emplace(std::move(*header_parser_));
      string_parser_->body_limit(opts_.max_body);
      http::async_read(stream_, buffer_, *string_parser_,
                       [self = shared_from_this()](beast::error_code ec, size_t) { self->OnStringBody(ec); });
    }
  }

  template <class Req>
  HttpRequest Convert(Req& req) {
    HttpRequest r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    for (const auto& f : req) {
      std::string name(f.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      r.headers.emplace_back(std::move(name), std::string(f.value()));
    }
    beast::error_code ec;
    auto ep = beast::get_lowest_layer(stream_).socket().remote_endpoint(ec);
    if (!ec) r.peer = ep.address().to_string();
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    return r;
  }

  void OnStringBody(beast::error_code ec) {
    if (ec == http::error::body_limit) return Reply(MakeError(413, "request body too large"), false);
    if (ec) return Close();
    auto& req = string_parser_->get();
    HttpRequest r = Convert(req);
    r.body = std::move(req.body());
    Dispatch(r);
  }

  void OnFileBody(beast::error_code ec) {
    auto& req = file_parser_->get();
    req.body().close();
    if (!refusal_.empty()) {
      std::string why = std::move(refusal_);
      refusal_.clear();
      if (ec) return Close();
      return Reply(MakeError(500, why), false);
    }
    if (ec) {
      spdlog::warn("upload body: {}", ec.message());
      ::unlink(file_path_.c_str());
      if (ec == http::error::body_limit) return Reply(MakeError(413, "upload too large"), false);
      return Close();
    }
    HttpRequest r = Convert(req);
    r.body_file = file_path_;
    Dispatch(r);
    // The handler moves the file where it belongs; anything left is a temp file.
    ::unlink(file_path_.c_str());
    file_path_.clear();
  }

  void Dispatch(HttpRequest& r) {
    HttpResponse resp;
    try {
      resp = handler_(r);
    } catch (const std::exception& e) {
      spdlog::error("handler threw on {} {}: {}", r.method, r.target, e.what());
      resp = MakeError(500, "internal error");
    }
    Reply(resp, keep_alive_ && resp.status < 400);
  }

  static HttpResponse MakeError(int status, const std::string& msg) {
    HttpResponse r;
    r.status = status;
    r.reason = msg;
    r.body = "{\"data\":null,\"message\":\"" + msg + "\\n\"}";
    return r;
  }

  void Reply(const HttpResponse& resp, bool keep_alive) {
    if (resp.shared_body) {
      // Zero-copy: the response points into the shared body, which the write handler keeps alive.
      auto res = std::make_shared<http::response<http::span_body<const char>>>();
      res->body() = boost::beast::span<const char>(resp.shared_body->data(), resp.shared_body->size());
      Send(res, resp, keep_alive, resp.shared_body);
      return;
    }
    auto res = std::make_shared<http::response<http::string_body>>();
    res->body() = resp.body;
    Send(res, resp, keep_alive, nullptr);
  }

  template <class Response>
  void Send(std::shared_ptr<Response> res, const HttpResponse& resp, bool keep_alive,
            std::shared_ptr<const std::string> keep) {
    res->version(version_ ? version_ : 11);
    res->result(static_cast<unsigned>(resp.status));
    if (!resp.reason.empty()) {
      // The reason phrase must be one line of printable text.
      std::string reason = resp.reason.substr(0, resp.reason.find('\n'));
      for (auto& c : reason)
        if (static_cast<unsigned char>(c) < 0x20) c = ' ';
      res->reason(reason);
    }
    res->set(http::field::server, "pve-api-daemon/3.0");
    res->set(http::field::content_type, resp.content_type);
    res->set(http::field::cache_control, "max-age=0");
    res->set(http::field::pragma, "no-cache");
    for (const auto& [k, v] : resp.headers) res->set(k, v);
    res->keep_alive(keep_alive);
    res->prepare_payload();
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res, keep, keep_alive](beast::error_code ec, size_t) {
                        if (ec || !keep_alive) return self->Close();
                        self->ReadHeader();
                      });
  }

  void Close() {
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(5));
    stream_.async_shutdown([self = shared_from_this()](beast::error_code) {
      beast::error_code ec;
      beast::get_lowest_layer(self->stream_).socket().shutdown(tcp::socket::shutdown_both, ec);
    });
  }

  beast::ssl_stream<beast::tcp_stream> stream_;
  const HttpsServerOptions& opts_;
  const HttpsServer::Handler& handler_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::empty_body>> header_parser_;
  std::optional<http::request_parser<http::string_body>> string_parser_;
  std::optional<http::request_parser<http::file_body>> file_parser_;
  std::string file_path_;
  std::string refusal_;  // set while draining a refused upload
  bool keep_alive_ = false;
  unsigned version_ = 11;
};

class BeastServer final : public HttpsServer {
 public:
  BeastServer(HttpsServerOptions opts, Handler handler)
      : opts_(std::move(opts)), handler_(std::move(handler)), ssl_(ssl::context::tls_server), acceptor_(io_) {}

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
    Accept();
    for (int i = 0; i < std::max(1, opts_.threads); ++i) threads_.emplace_back([this] { io_.run(); });
    return Ok();
  }

  uint16_t port() const override { return port_; }

  void Stop() override {
    if (stopped_.exchange(true)) return;
    asio::post(io_, [this] {
      beast::error_code ec;
      acceptor_.close(ec);
    });
    io_.stop();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

 private:
  void Accept() {
    acceptor_.async_accept(asio::make_strand(io_), [this](beast::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec == asio::error::operation_aborted) return;
      } else {
        socket.set_option(tcp::no_delay(true), ec);
        std::make_shared<Session>(std::move(socket), ssl_, opts_, handler_)->Run();
      }
      Accept();
    });
  }

  HttpsServerOptions opts_;
  Handler handler_;
  asio::io_context io_;
  ssl::context ssl_;
  tcp::acceptor acceptor_;
  std::vector<std::thread> threads_;
  uint16_t port_ = 0;
  std::atomic<bool> stopped_{false};
};

}  // namespace

Result<std::unique_ptr<HttpsServer>> HttpsServer::Start(const HttpsServerOptions& options, Handler handler) {
  auto server = std::make_unique<BeastServer>(options, std::move(handler));
  HEARTH_TRY(server->Init());
  return std::unique_ptr<HttpsServer>(std::move(server));
}

}  // namespace hearth
