#include "http/downloader.h"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cstdio>
#include <fstream>
#include <regex>

namespace hearth {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

struct Response {
  unsigned status = 0;
  std::string location;
  uint64_t bytes = 0;
};

// One request; the body goes to `out` only for a 2xx answer.
template <class Stream>
Result<Response> Fetch(Stream& stream, const UrlParts& u, std::ofstream& out, const DownloadOptions& opt) {
  http::request<http::empty_body> req{http::verb::get, u.target, 11};
  req.set(http::field::host, u.host);
  req.set(http::field::user_agent, "hearth");
  req.set(http::field::accept_encoding, "identity");
  http::write(stream, req);
  beast::flat_buffer buf;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(opt.max_bytes);
  http::read_header(stream, buf, parser);
  Response resp;
  resp.status = parser.get().result_int();
  if (resp.status >= 300 && resp.status < 400) {
    resp.location = std::string(parser.get()[http::field::location]);
    return resp;
  }
  if (resp.status < 200 || resp.status >= 300) return resp;
  uint64_t total = parser.content_length() ? *parser.content_length() : 0;
  std::vector<char> chunk(1 << 16);
  while (!parser.is_done()) {
    if (opt.cancelled && opt.cancelled()) return Fail(Aborted("download cancelled"));
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    beast::error_code ec;
    http::read(stream, buf, parser, ec);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) return Fail(Unavailable("download: " + ec.message()));
    size_t got = chunk.size() - parser.get().body().size;
    out.write(chunk.data(), static_cast<std::streamsize>(got));
    if (!out) return Fail(Internal("download: writing the file failed (disk full?)"));
    resp.bytes += got;
    if (opt.progress) opt.progress(resp.bytes, total);
  }
  return resp;
}

}  // namespace

Result<UrlParts> ParseHttpUrl(const std::string& url) {
  static const std::regex re(R"(^(https?)://(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-]+)(?::(\d{1,5}))?(/[^\s]*)?$)");
  std::smatch m;
  if (!std::regex_match(url, m, re)) return Fail(FieldError("url", "invalid URL '" + url + "' (want http:// or https://)"));
  UrlParts u;
  u.https = m[1].str() == "https";
  u.host = m[2].str();
  if (u.host.front() == '[') u.host = u.host.substr(1, u.host.size() - 2);
  u.port = m[3].matched ? m[3].str() : (u.https ? "443" : "80");
  u.target = m[4].matched ? m[4].str() : "/";
  return u;
}

Result<uint64_t> DownloadToFile(const std::string& url_in, const std::string& dest, const DownloadOptions& opt) {
  std::string url = url_in;
  std::ofstream out(dest, std::ios::binary | std::ios::trunc);
  if (!out) return Fail(Internal("cannot create " + dest));
  auto fail = [&](Error e) {
    out.close();
    std::remove(dest.c_str());
    return Fail(std::move(e));
  };
  for (int hop = 0; hop < 6; ++hop) {
    auto parts = ParseHttpUrl(url);
    if (!parts) return fail(parts.error());
    try {
      asio::io_context io;
      tcp::resolver resolver(io);
      auto endpoints = resolver.resolve(parts->host, parts->port);
      Result<Response> r = Response{};
      if (parts->https) {
        ssl::context ctx(ssl::context::tls_client);
        if (opt.verify_certificates) {
          ctx.set_default_verify_paths();
          ctx.set_verify_mode(ssl::verify_peer);
        } else {
          ctx.set_verify_mode(ssl::verify_none);
        }
        beast::ssl_stream<beast::tcp_stream> stream(io, ctx);
        SSL_set_tlsext_host_name(stream.native_handle(), parts->host.c_str());
        if (opt.verify_certificates) stream.set_verify_callback(ssl::host_name_verification(parts->host));
        beast::get_lowest_layer(stream).connect(endpoints);
        stream.handshake(ssl::stream_base::client);
        r = Fetch(stream, *parts, out, opt);
      } else {
        beast::tcp_stream stream(io);
        stream.connect(endpoints);
        r = Fetch(stream, *parts, out, opt);
      }
      if (!r) return fail(r.error());
      if (r->status >= 300 && r->status < 400 && !r->location.empty()) {
        // Absolute or host-relative redirects.
        url = r->location[0] == '/' ? std::string(parts->https ? "https://" : "http://") + parts->host + ":" +
                                          parts->port + r->location
                                    : r->location;
        out.seekp(0);
        continue;
      }
      if (r->status < 200 || r->status >= 300)
        return fail(Unavailable("download failed: HTTP " + std::to_string(r->status) + " from " + url));
      out.close();
      return r->bytes;
    } catch (const std::exception& e) {
      return fail(Unavailable("download from " + url + " failed: " + e.what()));
    }
  }
  return fail(Unavailable("download: too many redirects"));
}

}  // namespace hearth
