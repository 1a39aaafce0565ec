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
  std::string content_type, disposition;
  uint64_t length = 0;
};

// One request; the body goes to `out` only for a 2xx answer (none for HEAD: out is null).
template <class Stream>
Result<Response> Fetch(Stream& stream, const UrlParts& u, std::ofstream* out, const DownloadOptions& opt) {
  http::request<http::empty_body> req{out ? http::verb::get : http::verb::head, u.target, 11};
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
  resp.content_type = std::string(parser.get()[http::field::content_type]);
  resp.disposition = std::string(parser.get()[http::field::content_disposition]);
  if (parser.content_length()) resp.length = *parser.content_length();
  if (resp.status >= 300 && resp.status < 400) {
    resp.location = std::string(parser.get()[http::field::location]);
    return resp;
  }
  if (!out) return resp;  // HEAD: headers only
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
    out->write(chunk.data(), static_cast<std::streamsize>(got));
    if (!*out) return Fail(Internal("download: writing the file failed (disk full?)"));
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

namespace {

// Connects, sends one request per redirect hop (at most 5) and returns the final response.
Result<Response> Request(std::string url, std::ofstream* out, const DownloadOptions& opt, std::string* final_url) {
  for (int hop = 0; hop < 6; ++hop) {
    HEARTH_ASSIGN_OR_RETURN(UrlParts parts, ParseHttpUrl(url));
    Result<Response> r = Response{};
    try {
      asio::io_context io;
      tcp::resolver resolver(io);
      auto endpoints = resolver.resolve(parts.host, parts.port);
      if (parts.https) {
        ssl::context ctx(ssl::context::tls_client);
        if (opt.verify_certificates) {
          ctx.set_default_verify_paths();
          ctx.set_verify_mode(ssl::verify_peer);
        } else {
          ctx.set_verify_mode(ssl::verify_none);
        }
        beast::ssl_stream<beast::tcp_stream> stream(io, ctx);
        SSL_set_tlsext_host_name(stream.native_handle(), parts.host.c_str());
        if (opt.verify_certificates) stream.set_verify_callback(ssl::host_name_verification(parts.host));
        beast::get_lowest_layer(stream).connect(endpoints);
        stream.handshake(ssl::stream_base::client);
        r = Fetch(stream, parts, out, opt);
      } else {
        beast::tcp_stream stream(io);
        stream.connect(endpoints);
        r = Fetch(stream, parts, out, opt);
      }
    } catch (const std::exception& e) {
      return Fail(Unavailable("request to " + url + " failed: " + e.what()));
    }
    if (!r) return r;
    if (r->status >= 300 && r->status < 400 && !r->location.empty()) {
      // Absolute or host-relative redirects.
      url = r->location[0] == '/'
                ? std::string(parts.https ? "https://" : "http://") + parts.host + ":" + parts.port + r->location
                : r->location;
      if (out) out->seekp(0);
      continue;
    }
    if (r->status < 200 || r->status >= 300)
      return Fail(Unavailable("download failed: HTTP " + std::to_string(r->status) + " from " + url));
    if (final_url) *final_url = url;
    return r;
  }
  return Fail(Unavailable("download: too many redirects"));
}

}  // namespace

Result<uint64_t> DownloadToFile(const std::string& url, const std::string& dest, const DownloadOptions& opt) {
  std::ofstream out(dest, std::ios::binary | std::ios::trunc);
  if (!out) return Fail(Internal("cannot create " + dest));
  auto r = Request(url, &out, opt, nullptr);
  out.close();
  if (!r) {
    std::remove(dest.c_str());
    return Fail(r.error());
  }
  return r->bytes;
}

Result<UrlMetadata> QueryUrlMetadata(const std::string& url, bool verify_certificates) {
  DownloadOptions opt;
  opt.verify_certificates = verify_certificates;
  std::string final_url;
  HEARTH_ASSIGN_OR_RETURN(Response r, Request(url, nullptr, opt, &final_url));
  UrlMetadata m;
  m.mimetype = r.content_type.substr(0, r.content_type.find(';'));
  m.size = r.length;
  static const std::regex disp(R"re(filename\*?=(?:UTF-8'')?"?([^";]+)"?)re", std::regex::icase);
  std::smatch match;
  if (std::regex_search(r.disposition, match, disp)) m.filename = match[1].str();
  if (m.filename.empty()) {
    auto parts = ParseHttpUrl(final_url);
    std::string path = parts ? parts->target.substr(0, parts->target.find('?')) : "";
    m.filename = path.substr(path.rfind('/') + 1);
  }
  if (size_t slash = m.filename.rfind('/'); slash != std::string::npos) m.filename = m.filename.substr(slash + 1);
  return m;
}

}  // namespace hearth
